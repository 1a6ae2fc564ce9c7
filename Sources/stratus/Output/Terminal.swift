import Foundation

/// The command line's only printer: buffered writes to stdout or stderr, with optional ANSI color.
///
/// A class because it buffers; each instance is used from the command's one task only.
final class Terminal: @unchecked Sendable {  // Used from a single task; the buffer is never shared.
    private let handle: FileHandle
    private let descriptor: Int32
    private var buffer = ""

    static let standardOutput = Terminal(handle: .standardOutput, descriptor: 1)
    static let standardError = Terminal(handle: .standardError, descriptor: 2)

    private init(handle: FileHandle, descriptor: Int32) {
        self.handle = handle
        self.descriptor = descriptor
    }

    /// Whether this stream is a terminal (for colors and progress).
    var isTTY: Bool { isatty(descriptor) == 1 }

    /// Whether to color, given the user's choice and `NO_COLOR`.
    func colors(_ mode: ColorMode) -> Bool {
        switch mode {
        case .always: return true
        case .never: return false
        case .auto: return isTTY && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        }
    }

    func write(_ text: String) {
        buffer += text
        if buffer.utf8.count > 1 << 16 { flush() }
    }

    func line(_ text: String = "") { write(text + "\n") }

    func flush() {
        guard !buffer.isEmpty else { return }
        handle.write(Data(buffer.utf8))
        buffer = ""
    }

    deinit { flush() }
}

/// ANSI colors, applied only when enabled.
struct Paint {
    var enabled: Bool

    func green(_ text: String) -> String { wrap(text, "32") }
    func red(_ text: String) -> String { wrap(text, "31") }
    func yellow(_ text: String) -> String { wrap(text, "33") }
    func bold(_ text: String) -> String { wrap(text, "1") }
    func dim(_ text: String) -> String { wrap(text, "2") }

    private func wrap(_ text: String, _ code: String) -> String { enabled ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }
}
