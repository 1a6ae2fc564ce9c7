import Foundation

/// An uncompressed `newc` cpio archive, the format the Linux kernel unpacks as an initramfs.
///
/// Written here rather than by `find | cpio`, so an initramfs needs no shell pipeline and no
/// cpio tool, and its owners (root) and modes are exactly what the guest needs.
struct CPIOArchive {
    private(set) var data = Data()
    private var nextInode = 1

    /// A directory (`0o755` unless said otherwise).
    mutating func directory(_ path: String, mode: Int = 0o755) {
        append(path, mode: 0o040000 | mode, links: 2, contents: Data())
    }

    /// A regular file.
    mutating func file(_ path: String, contents: Data, mode: Int = 0o644) {
        append(path, mode: 0o100000 | mode, contents: contents)
    }

    /// A file with the directories above it that `made` does not hold yet (added to it).
    mutating func file(_ path: String, contents: Data, mode: Int = 0o644, making made: inout Set<String>) {
        var parent = ""
        for component in path.split(separator: "/").dropLast() {
            parent += "/" + component
            if made.insert(parent).inserted { directory(parent) }
        }
        file(path, contents: contents, mode: mode)
    }

    /// A character device node, such as `/dev/console` (5, 1).
    mutating func characterDevice(_ path: String, major: Int, minor: Int, mode: Int = 0o600) {
        append(path, mode: 0o020000 | mode, contents: Data(), device: (major, minor))
    }

    /// The archive with its trailer: what goes into the initramfs file.
    func finished() -> Data {
        var copy = self
        copy.append("TRAILER!!!", mode: 0, links: 1, contents: Data(), inode: 0)
        return copy.data
    }

    private mutating func append(_ path: String, mode: Int, links: Int = 1, contents: Data, device: (Int, Int) = (0, 0), inode: Int? = nil) {
        let name = path.hasPrefix("/") ? String(path.dropFirst()) : path
        let fields = [
            inode ?? nextInode, mode, 0, 0, links, 0, contents.count, 0, 0, device.0, device.1, name.utf8.count + 1, 0,
        ]
        if inode == nil { nextInode += 1 }
        data.append(contentsOf: Array("070701".utf8))
        for field in fields { data.append(contentsOf: Array(String(format: "%08X", field).utf8)) }
        data.append(contentsOf: Array(name.utf8) + [0])
        pad()
        data.append(contents)
        pad()
    }

    /// Header-plus-name and data each end on a 4-byte boundary.
    private mutating func pad() {
        while data.count % 4 != 0 { data.append(0) }
    }
}
