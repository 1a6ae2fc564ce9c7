import Foundation

/// A QEMU TCG guest a test starts itself (not through libvirt: one process may open only one
/// embedded libvirt driver) to do what this host's kernel cannot — 802.1Q, an AoE initiator,
/// device-mapper — and stops by its PID. Its serial console goes to `console`.
///
/// One at a time in the test process (`start`): a TCG guest keeps a core busy while it boots,
/// and on this machine's two cores several at once starve the timing-sensitive tests beside them.
public final class ProofGuest: @unchecked Sendable {
    public let console: String
    let process = Process()
    private let lock = NSLock()
    private var holdsSlot = false

    /// Waits for the slot, then boots the guest (see `init`); `stop` gives the slot back.
    public static func start(kernel: String, initrd: String, cmdline: String, console: String, memoryMiB: Int = 512, extra: [String] = [], namespace: String? = nil) async throws -> ProofGuest {
        await slot.acquire()
        do {
            let guest = try ProofGuest(kernel: kernel, initrd: initrd, cmdline: cmdline, console: console, memoryMiB: memoryMiB, extra: extra, namespace: namespace)
            guest.lock.withLock { guest.holdsSlot = true }
            return guest
        } catch {
            await slot.release()
            throw error
        }
    }

    static let slot = Slot()

    /// One holder at a time, the others waiting in order.
    actor Slot {
        private var busy = false
        private var waiting: [CheckedContinuation<Void, Never>] = []

        func acquire() async {
            if !busy {
                busy = true
                return
            }
            await withCheckedContinuation { waiting.append($0) }
        }

        func release() {
            if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
        }
    }

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

    /// SIGKILL, and reaped; the slot is given back.
    public func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        let held = lock.withLock { () -> Bool in
            defer { holdsSlot = false }
            return holdsSlot
        }
        if held { Task { await Self.slot.release() } }
    }
}
