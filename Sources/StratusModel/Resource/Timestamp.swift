import Foundation

/// RFC 3339 timestamps in UTC with second precision, as every `…Timestamp` and event time is written.
public enum Timestamp {
    /// Formats a date as `2026-11-24T21:54:04Z`.
    public static func string(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: false).timeZone(separator: .omitted).dateSeparator(.dash).timeSeparator(.colon))
    }

    /// Parses what `string(_:)` writes.
    public static func date(_ text: String) -> Date? {
        try? Date(text, strategy: .iso8601)
    }

    /// `5s`, `3m`, `2h`, `4d`: the age column of `get`.
    public static func age(since text: String, now: Date = Date()) -> String {
        guard let date = date(text) else { return "?" }
        let seconds = max(0, Int(now.timeIntervalSince(date)))
        if seconds < 120 { return "\(seconds)s" }
        if seconds < 7200 { return "\(seconds / 60)m" }
        if seconds < 172_800 { return "\(seconds / 3600)h" }
        return "\(seconds / 86400)d"
    }
}
