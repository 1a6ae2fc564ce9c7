import Foundation

/// The id of the API request being served, carried in a task-local so what the request does
/// (its store writes, the events they record, the log lines on the way) carries it too, and the
/// controller's reconcile of the change logs it (`StoredEvent.requestId`).
public enum RequestID {
    @TaskLocal public static var current: String?

    /// A new id: 16 upper-case hex digits, as S3 gives (`x-amz-request-id`).
    public static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        let value = generator.next() as UInt64
        let hex = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
