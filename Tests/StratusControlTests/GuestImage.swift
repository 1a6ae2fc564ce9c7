import Foundation

/// A tiny bootable guest built from Debian packages at test time (RECIPES §2a): Debian's
/// kernel, unpacked to an ELF `vmlinux` (PVH boot, ~4 s under TCG), and a busybox initramfs
/// whose `/init` prints a marker on the serial console and then idles.
///
/// Built once into a cache outside the repository and reused between runs.
enum GuestImage {
    static let marker = "STRATUS-GUEST-UP"
    static let cache = "/var/tmp/stratus-guest-cache"

    struct Files {
        var kernel: String
        var initrd: String
        var disk: String
    }

    /// Why a guest cannot be built here, or nil when it can.
    struct Unavailable: Error, CustomStringConvertible {
        var description: String
    }

    static func build() throws -> Files {
        let files = Files(kernel: "\(cache)/vmlinux", initrd: "\(cache)/initrd.gz", disk: "\(cache)/disk.raw")
        let manager = FileManager.default
        if [files.kernel, files.initrd, files.disk].allSatisfy(manager.fileExists(atPath:)) { return files }
        guard manager.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64") else { throw Unavailable(description: "qemu-system-x86_64 is not installed (make install-deps)") }
        guard manager.isExecutableFile(atPath: "/bin/busybox") else { throw Unavailable(description: "/bin/busybox is missing (busybox-static; make install-deps)") }
        try? manager.removeItem(atPath: cache)
        try manager.createDirectory(atPath: "\(cache)/debs", withIntermediateDirectories: true)
        var depends = try run("/usr/bin/apt-cache", ["depends", "linux-image-amd64"])
        if !depends.contains("Depends: linux-image-6") {
            _ = try run("/usr/bin/apt-get", ["update", "-qq"])  // a machine whose package lists were never fetched
            depends = try run("/usr/bin/apt-cache", ["depends", "linux-image-amd64"])
        }
        guard let package = depends.split(separator: "\n").compactMap({ line -> String? in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            return trimmed.hasPrefix("Depends: linux-image-6") ? String(trimmed.dropFirst("Depends: ".count)) : nil
        }).first else {
            throw Unavailable(description: "apt-cache knows no linux-image-amd64 kernel (run apt-get update)")
        }
        _ = try run("/usr/bin/apt-get", ["download", "-q", package], in: "\(cache)/debs")
        let deb = try manager.contentsOfDirectory(atPath: "\(cache)/debs").first { $0.hasSuffix(".deb") }
        guard let deb else { throw Unavailable(description: "apt-get download \(package) produced no .deb") }
        _ = try run("/usr/bin/dpkg", ["-x", "\(cache)/debs/\(deb)", "\(cache)/root"])
        let script = """
            import glob, lzma
            data = open(glob.glob('\(cache)/root/boot/vmlinuz-*')[0], 'rb').read()
            start = data.find(b'\\xfd7zXZ\\x00')
            open('\(files.kernel)', 'wb').write(lzma.LZMADecompressor().decompress(data[start:]))
            """
        _ = try run("/usr/bin/python3", ["-c", script])
        let initrd = "\(cache)/initrd"
        for directory in ["bin", "proc", "sys", "dev"] { try manager.createDirectory(atPath: "\(initrd)/\(directory)", withIntermediateDirectories: true) }
        try manager.copyItem(atPath: "/bin/busybox", toPath: "\(initrd)/bin/busybox")
        let initScript = """
            #!/bin/busybox sh
            /bin/busybox mount -t proc proc /proc
            /bin/busybox mount -t sysfs sys /sys
            echo \(marker)
            while true; do /bin/busybox sleep 3600; done

            """
        try initScript.write(toFile: "\(initrd)/init", atomically: true, encoding: .utf8)
        try manager.setAttributes([.posixPermissions: 0o755], ofItemAtPath: "\(initrd)/init")
        _ = try run("/bin/busybox", ["mknod", "\(initrd)/dev/console", "c", "5", "1"])
        _ = try run("/bin/sh", ["-c", "cd \(initrd) && find . | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -1 > \(files.initrd)"])
        _ = try run("/usr/bin/truncate", ["-s", "1M", files.disk])
        for path in [cache, files.kernel, files.initrd, files.disk] { try manager.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path) }
        return files
    }

    @discardableResult
    static func run(_ tool: String, _ arguments: [String], in directory: String? = nil) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Unavailable(description: "\(tool) \(arguments.joined(separator: " ")) failed: \(String(decoding: err, as: UTF8.self))")
        }
        return String(decoding: out, as: UTF8.self)
    }
}
