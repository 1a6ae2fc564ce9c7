import Foundation

/// libvirt's embedded QEMU driver (`qemu:///embed?root=DIR`): real QEMU guests, no daemon.
public enum EmbeddedQEMU {
    /// The longest root libvirt is given as is. Each guest's monitor is a UNIX socket at
    /// `ROOT/lib/qemu/domain-N-stratus-i-xxxxxxxx/monitor.sock`, and a socket path holds at most
    /// 107 bytes: a longer root fails every start with "UNIX socket path … too long".
    static let longestRoot = 48

    /// Prepares `root` (its `etc/qemu.conf`) and returns the connection URI.
    ///
    /// `stdio_handler = "file"` avoids needing virtlogd; running QEMU as root avoids the
    /// capability re-probe storm when `/dev/kvm` is root-only (RECIPES §2c). A relative root is
    /// made absolute; one too long for the monitor sockets is reached through a short symbolic
    /// link, `/tmp/stratus-embed-<digest of the root>`.
    public static func prepare(root: String) throws -> String {
        let absolute = URL(fileURLWithPath: root).standardizedFileURL.path
        let etc = (absolute as NSString).appendingPathComponent("etc")
        try FileManager.default.createDirectory(atPath: etc, withIntermediateDirectories: true)
        let conf = (etc as NSString).appendingPathComponent("qemu.conf")
        if !FileManager.default.fileExists(atPath: conf) {
            try "stdio_handler = \"file\"\nuser = \"root\"\ngroup = \"root\"\n".write(toFile: conf, atomically: true, encoding: .utf8)
        }
        return "qemu:///embed?root=\(try shortPath(to: absolute))"
    }

    /// `root` itself when it is short enough, else a symbolic link to it under /tmp (made, or
    /// checked to point at `root`: a link someone else made to elsewhere is refused).
    static func shortPath(to root: String) throws -> String {
        guard let alias = alias(of: root) else { return root }
        let manager = FileManager.default
        if let target = try? manager.destinationOfSymbolicLink(atPath: alias) {
            if target == root { return alias }
            try manager.removeItem(atPath: alias)  // fails, as it should, for another user's link in sticky /tmp
        }
        try manager.createSymbolicLink(atPath: alias, withDestinationPath: root)
        return alias
    }

    /// The link `prepare` reaches an absolute `root` through, or nil when it uses `root` itself.
    public static func alias(of root: String) -> String? {
        guard root.utf8.count > longestRoot else { return nil }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in root.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return "/tmp/stratus-embed-\(String(hash, radix: 16))"
    }
}
