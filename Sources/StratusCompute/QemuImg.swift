import Foundation

/// `qemu-img`, for copy-on-write overlays on images.
public enum QemuImg {
    /// Creates `path` as a qcow2 overlay backed by `backing` (whose format must be named: qemu-img refuses to guess).
    public static func createOverlay(at path: String, backing: String, format: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/qemu-img")
        process.arguments = ["create", "-q", "-f", "qcow2", "-b", backing, "-F", format, path]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw HypervisorError(operation: "qemu-img create", message: "cannot run /usr/bin/qemu-img (install qemu-utils): \(error)")
        }
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw HypervisorError(operation: "qemu-img create", message: message.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }
}
