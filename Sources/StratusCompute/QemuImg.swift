import Foundation

/// `qemu-img`, for copy-on-write overlays on images.
public enum QemuImg {
    /// Creates `path` as a qcow2 overlay backed by `backing` (whose format must be named: qemu-img refuses to guess).
    public static func createOverlay(at path: String, backing: String, format: String) throws {
        let child: ChildProcess
        do {
            child = try ChildProcess.run("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", "-b", backing, "-F", format, path])
        } catch {
            throw HypervisorError(operation: "qemu-img create", message: "cannot run /usr/bin/qemu-img (install qemu-utils): \(error)")
        }
        guard child.status == 0 else {
            throw HypervisorError(operation: "qemu-img create", message: child.errors.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }
}
