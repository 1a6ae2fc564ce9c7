import Foundation

/// A QEMU TCG guest a test starts itself (not through libvirt: one process may open only one
/// embedded libvirt driver) to do what this host's kernel cannot — 802.1Q, an AoE initiator,
/// device-mapper — and stops by its PID. Its serial console goes to `console`.
public final class ProofGuest: @unchecked Sendable {
    public let console: String
    let process = Process()

    /// Boots `kernel` with `initrd` (the tiny image's, followed by a proof script) and `extra`
    /// QEMU arguments (disks, NICs, more serial ports); in network namespace `namespace` when
    /// given (`ip netns exec` execs QEMU, so the PID is QEMU's).
    public init(kernel: String, initrd: String, cmdline: String, console: String, memoryMiB: Int = 512, extra: [String] = [], namespace: String? = nil) throws {
        self.console = console
        let qemu = ["/usr/bin/qemu-system-x86_64", "-machine", "accel=tcg", "-m", "\(memoryMiB)", "-kernel", kernel, "-initrd", initrd, "-append", cmdline,
                    "-display", "none", "-monitor", "none", "-serial", "file:\(console)", "-nodefaults", "-no-reboot"] + extra
        let command = namespace.map { ["/usr/sbin/ip", "netns", "exec", $0] + qemu } ?? qemu
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    public var isRunning: Bool { process.isRunning }

    /// The console so far.
    public var text: String { (try? String(contentsOfFile: console, encoding: .utf8)) ?? "" }

    /// The console once it contains `marker`, or as it is when `timeout` passes or the guest ends.
    public func wait(for marker: String, timeout: Duration = .seconds(180)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        var seen = text
        while ContinuousClock.now < deadline, process.isRunning, !seen.contains(marker) {
            try await Task.sleep(for: .milliseconds(250))
            seen = text
        }
        return seen
    }

    /// SIGKILL, and reaped.
    public func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}
