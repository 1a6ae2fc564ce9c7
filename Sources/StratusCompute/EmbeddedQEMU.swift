import Foundation

/// libvirt's embedded QEMU driver (`qemu:///embed?root=DIR`): real QEMU guests, no daemon.
public enum EmbeddedQEMU {
    /// Prepares `root` (its `etc/qemu.conf`) and returns the connection URI.
    ///
    /// `stdio_handler = "file"` avoids needing virtlogd; running QEMU as root avoids the
    /// capability re-probe storm when `/dev/kvm` is root-only (RECIPES §2c).
    public static func prepare(root: String) throws -> String {
        let etc = (root as NSString).appendingPathComponent("etc")
        try FileManager.default.createDirectory(atPath: etc, withIntermediateDirectories: true)
        let conf = (etc as NSString).appendingPathComponent("qemu.conf")
        if !FileManager.default.fileExists(atPath: conf) {
            try "stdio_handler = \"file\"\nuser = \"root\"\ngroup = \"root\"\n".write(toFile: conf, atomically: true, encoding: .utf8)
        }
        return "qemu:///embed?root=\(root)"
    }
}
