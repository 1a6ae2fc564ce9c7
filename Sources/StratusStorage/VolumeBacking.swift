import Foundation
import StratusCompute

/// Where a volume's blocks live on its storage node. `FileBlockExport` exports whatever this
/// gives with vblade; a sparse file per volume unless a volume group is configured.
public protocol VolumeBacking: Sendable {
    /// What vblade exports and a guest on the same node opens: a file, or a block device.
    func path(_ volume: String) -> String
    /// Whether `path` is a block device (a logical volume) rather than a file.
    var isBlockDevice: Bool { get }
    /// Creates the store at `bytes` (starting with `source`'s blocks when given) or grows it to
    /// `bytes`; true when an existing one grew. Never shrinks.
    func ensure(_ volume: String, bytes: Int64, source: String?) throws -> Bool
    /// Wipes its blocks and removes it, so nothing of it reaches the next volume; nothing to
    /// remove is success.
    func remove(_ volume: String) throws
    /// The volume ids with a store here.
    func volumes() throws -> [String]
    /// Copies its blocks as they are into a new file at `target` (holes kept); returns how
    /// (`reflink` or `copy`).
    func copy(_ volume: String, to target: String) throws -> String
}

extension VolumeBacking {
    static func validVolume(_ volume: String) -> Bool {
        volume.hasPrefix("vol-") && volume.count <= 32 && volume.dropFirst(4).allSatisfy { $0.isHexDigit }
    }
}

/// Sparse files `DIR/<vol-id>.img`, grown with ftruncate; removed by truncating first, so a
/// later volume's file reads zeros where it has not written (the filesystem gives new blocks).
public struct FileBacking: VolumeBacking {
    public let directory: String
    public var isBlockDevice: Bool { false }

    public init(directory: String) { self.directory = directory }

    public func path(_ volume: String) -> String { "\(directory)/\(volume).img" }

    public func ensure(_ volume: String, bytes: Int64, source: String?) throws -> Bool {
        let file = path(volume)
        if let source, !FileManager.default.fileExists(atPath: file) {
            // Copied under a temporary name and renamed: a copy cut short never looks like the volume.
            let partial = file + ".partial"
            unlink(partial)
            _ = try Self.copy(source, to: partial)
            guard rename(partial, file) == 0 else { throw AoEError("cannot move \(partial) into place: \(String(cString: strerror(errno)))") }
        }
        let descriptor = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw AoEError("cannot open \(file): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw AoEError("cannot stat \(file): \(String(cString: strerror(errno)))") }
        if info.st_size == bytes { return false }
        guard info.st_size < bytes else { throw AoEError("\(file) holds \(info.st_size) bytes, more than the volume's \(bytes): volumes only grow") }
        guard ftruncate(descriptor, off_t(bytes)) == 0 else { throw AoEError("cannot size \(file) to \(bytes) bytes: \(String(cString: strerror(errno)))") }
        return info.st_size != 0
    }

    public func remove(_ volume: String) throws {
        let file = path(volume)
        let descriptor = open(file, O_WRONLY | O_CLOEXEC)
        if descriptor >= 0 {
            let truncated = ftruncate(descriptor, 0) == 0
            close(descriptor)
            if !truncated { throw AoEError("cannot truncate \(file): \(String(cString: strerror(errno)))") }
        }
        if unlink(file) != 0 && errno != ENOENT { throw AoEError("cannot remove \(file): \(String(cString: strerror(errno)))") }
    }

    public func volumes() throws -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".img") }.map { String($0.dropLast(4)) }.filter(Self.validVolume).sorted()
    }

    public func copy(_ volume: String, to target: String) throws -> String {
        guard FileManager.default.fileExists(atPath: path(volume)) else { throw AoEError("volume \(volume) has no backing store on this node yet") }
        return try Self.copy(path(volume), to: target)
    }

    /// Copies a file keeping its holes: a reflink (shared blocks, copy on write) where the
    /// filesystem allows, else a sparse copy; synced. Returns `reflink` or `copy`.
    static func copy(_ source: String, to target: String) throws -> String {
        let reflinked = try ChildProcess.run("/usr/bin/cp", ["--reflink=always", "--sparse=always", source, target])
        var how = "reflink"
        if reflinked.status != 0 {
            unlink(target)
            let copied = try ChildProcess.run("/usr/bin/cp", ["--sparse=always", source, target])
            guard copied.status == 0 else { throw AoEError("cannot copy \(source) to \(target): \(copied.errors)") }
            how = "copy"
        }
        let descriptor = open(target, O_RDONLY | O_CLOEXEC)
        if descriptor >= 0 { fsync(descriptor); close(descriptor) }
        chmod(target, 0o600)
        return how
    }
}

/// Runs a tool to completion: on this host (`LocalCommands`), or elsewhere (a test's guest).
public protocol CommandRunner: Sendable {
    func run(_ arguments: [String]) throws -> ChildProcess
}

/// Tools run on this host with `ChildProcess` (the first argument is the tool's absolute path).
public struct LocalCommands: CommandRunner {
    public init() {}
    public func run(_ arguments: [String]) throws -> ChildProcess {
        guard let tool = arguments.first else { throw AoEError("no command") }
        return try ChildProcess.run(tool, Array(arguments.dropFirst()))
    }
}

/// Logical volumes `/dev/<VG>/<vol-id>` of an LVM volume group (`--volume-group`), as the seed's
/// storage workers kept them: `lvcreate` at the volume's size, `lvextend` to grow, and on delete
/// the blocks zeroed (`blkdiscard --zeroout`, else `dd` from /dev/zero) before `lvremove`, so
/// freed extents never carry a volume's data into the next. A crash between the two leaves the
/// volume in the group, and the next sweep removes it the same way.
public struct LVMBacking: VolumeBacking {
    public let volumeGroup: String
    let runner: any CommandRunner
    let lvm: String
    let dd: String
    let blkdiscard: String
    public var isBlockDevice: Bool { true }

    public init(volumeGroup: String, runner: any CommandRunner = LocalCommands(), lvm: String = "/usr/sbin/lvm", dd: String = "/usr/bin/dd", blkdiscard: String = "/usr/sbin/blkdiscard") {
        self.volumeGroup = volumeGroup
        self.runner = runner
        self.lvm = lvm
        self.dd = dd
        self.blkdiscard = blkdiscard
    }

    /// Whether `name` can be a volume group's name (LVM's own rule: letters, digits, `+ _ . -`, not starting with `-`).
    public static func validGroupName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 127 && !name.hasPrefix("-") && name != "." && name != ".."
            && name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "+_.-".unicodeScalars.contains($0)) }
    }

    public func path(_ volume: String) -> String { "/dev/\(volumeGroup)/\(volume)" }

    @discardableResult
    func run(_ arguments: [String], _ what: String) throws -> String {
        let result = try runner.run(arguments)
        guard result.status == 0 else {
            let said = (result.errors + result.output).trimmingCharacters(in: .whitespacesAndNewlines)
            throw AoEError("cannot \(what) (\(arguments.joined(separator: " ")) exited \(result.status)): \(said)")
        }
        return result.output
    }

    /// The group's logical volumes that are volumes, with their sizes in bytes.
    func sizes() throws -> [String: Int64] {
        let listing = try run([lvm, "lvs", "--noheadings", "--nosuffix", "--units", "b", "--separator", ",", "-o", "lv_name,lv_size", volumeGroup],
                              "list the logical volumes of \(volumeGroup) (is it a volume group? vgcreate \(volumeGroup) DEVICE)")
        var sizes: [String: Int64] = [:]
        for line in listing.split(separator: "\n") {
            let fields = line.trimmingCharacters(in: .whitespaces).split(separator: ",")
            guard fields.count == 2, let size = Int64(fields[1]), Self.validVolume(String(fields[0])) else { continue }
            sizes[String(fields[0])] = size
        }
        return sizes
    }

    /// The volume group exists and can be listed (checked when the server starts).
    public func check() throws { _ = try sizes() }

    public func ensure(_ volume: String, bytes: Int64, source: String?) throws -> Bool {
        guard Self.validVolume(volume) else { throw AoEError("\(volume) is not a volume id") }
        if let size = try sizes()[volume] {
            if size == bytes { return false }
            guard size < bytes else { throw AoEError("\(path(volume)) holds \(size) bytes, more than the volume's \(bytes): volumes only grow") }
            try run([lvm, "lvextend", "--size", "\(bytes)b", "\(volumeGroup)/\(volume)"], "grow \(path(volume))")
            return true
        }
        try run([lvm, "lvcreate", "--yes", "--wipesignatures", "y", "--zero", "y", "--name", volume, "--size", "\(bytes)b", volumeGroup], "create \(path(volume))")
        if let source {
            do {
                try run([dd, "if=\(source)", "of=\(path(volume))", "bs=1M", "conv=fsync"], "copy \(source) into \(path(volume))")
            } catch {
                // Half a copy is not the snapshot: the volume is made again from the start.
                try? remove(volume)
                throw error
            }
        }
        return false
    }

    public func remove(_ volume: String) throws {
        guard Self.validVolume(volume) else { throw AoEError("\(volume) is not a volume id") }
        guard try sizes()[volume] != nil else { return }
        if (try? runner.run([blkdiscard, "--zeroout", path(volume)]))?.status != 0 {
            try run([dd, "if=/dev/zero", "of=\(path(volume))", "bs=1M", "oflag=direct", "conv=fsync"], "zero \(path(volume))", allowing: "No space left on device")
        }
        try run([lvm, "lvremove", "--yes", "\(volumeGroup)/\(volume)"], "remove \(path(volume))")
    }

    /// `run`, where a failure whose message contains `allowing` counts as success (dd writing
    /// zeros until the device is full ends that way).
    func run(_ arguments: [String], _ what: String, allowing: String) throws {
        let result = try runner.run(arguments)
        guard result.status == 0 || (result.errors + result.output).contains(allowing) else {
            throw AoEError("cannot \(what) (\(arguments.joined(separator: " ")) exited \(result.status)): \(result.errors)")
        }
    }

    public func volumes() throws -> [String] { try sizes().keys.sorted() }

    public func copy(_ volume: String, to target: String) throws -> String {
        guard try sizes()[volume] != nil else { throw AoEError("volume \(volume) has no logical volume in \(volumeGroup) yet") }
        try run([dd, "if=\(path(volume))", "of=\(target)", "bs=1M", "conv=sparse,fsync"], "copy \(path(volume)) to \(target)")
        return "copy"
    }
}
