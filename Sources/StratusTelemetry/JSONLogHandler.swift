import Foundation
import Logging
import Synchronization

/// Log lines as one JSON object each (`--log-format json`): time, level, logger, message, the
/// request id of the API call being served, and the line's metadata.
///
/// Metadata whose key names a secret (`secret`, `password`, `token`, `authorization`) is
/// written as `"[redacted]"` whatever logged it: a secret must not reach a log by mistake.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    let output: LogOutput

    public init(label: String, output: LogOutput = .standardError, metadataProvider: Logger.MetadataProvider? = RequestID.metadataProvider) {
        self.label = label
        self.output = output
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let own = event.metadata { merged.merge(own) { _, new in new } }
        var object: [String: Any] = [
            "time": Self.timestamp(Date()),
            "level": event.level.rawValue,
            "logger": label,
            "message": event.message.description,
        ]
        for (key, value) in merged {
            // Dotted keys lose their common prefix (stratus.requestId becomes requestId) unless
            // that would hide a field of the line itself (stratus.message stays as it is).
            let short = key.hasPrefix("stratus.") ? String(key.dropFirst("stratus.".count)) : key
            let name = Self.lineFields.contains(short) ? key : short
            object[name] = Self.redacts(name) ? "[redacted]" : Self.json(value)
        }
        if let error = event.error { object["error"] = "\(error)" }
        guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        data.append(0x0A)
        output.write(data)
    }

    static let lineFields: Set<String> = ["time", "level", "logger", "message", "error"]

    static func redacts(_ key: String) -> Bool {
        let lowered = key.lowercased()
        return ["secret", "password", "token", "authorization", "credential"].contains { lowered.contains($0) }
    }

    static func json(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let text): return text
        case .stringConvertible(let convertible): return convertible.description
        case .array(let values): return values.map(json)
        case .dictionary(let values): return values.mapValues(json)
        }
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: true).timeSeparator(.colon).timeZone(separator: .omitted))
    }
}

/// Where log lines go: standard error, written whole under a lock so lines of concurrent
/// tasks never interleave.
public final class LogOutput: Sendable {
    private let handle: Mutex<FileHandle>

    public init(_ handle: FileHandle) { self.handle = Mutex(handle) }

    public static let standardError = LogOutput(.standardError)

    func write(_ data: Data) {
        handle.withLock { $0.write(data) }
    }
}

extension RequestID {
    /// Adds the current request id to every log line made while serving it.
    public static let metadataProvider = Logger.MetadataProvider {
        guard let id = RequestID.current else { return [:] }
        return ["stratus.requestId": .string(id)]
    }
}

/// How `stratus serve` writes its log.
public enum LogFormat: String, Sendable, CaseIterable, Codable {
    /// For a terminal: `time level label: message key=value…`.
    case text
    /// One JSON object a line, for a log collector.
    case json

    /// Makes every `Logger` of this process write in this format at `level`.
    public func bootstrap(level: Logger.Level) {
        switch self {
        case .json:
            LoggingSystem.bootstrap({ label, provider in
                var handler = JSONLogHandler(label: label, metadataProvider: provider)
                handler.logLevel = level
                return handler
            }, metadataProvider: RequestID.metadataProvider)
        case .text:
            LoggingSystem.bootstrap({ label, provider in
                var handler = StreamLogHandler.standardError(label: label, metadataProvider: provider)
                handler.logLevel = level
                return handler
            }, metadataProvider: RequestID.metadataProvider)
        }
    }
}
