import Foundation

/// The `Credential=` of a SigV4 request: `AKID/20261125/us-east-1/ec2/aws4_request`.
public struct CredentialScope: Sendable, Equatable {
    public let accessKey: String
    public let date: String
    public let region: String
    public let service: String

    public init(accessKey: String, date: String, region: String, service: String) {
        self.accessKey = accessKey
        self.date = date
        self.region = region
        self.service = service
    }

    /// Parses and checks a credential against the request's `X-Amz-Date`.
    init(_ credential: String, requestDate: String) throws {
        let parts = credential.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5, parts[4] == "aws4_request", !parts[0].isEmpty else {
            throw AuthenticationError.malformed("The credential \"\(credential)\" must read ACCESSKEY/YYYYMMDD/REGION/SERVICE/aws4_request.")
        }
        guard requestDate.hasPrefix(parts[1]), parts[1].count == 8 else {
            throw AuthenticationError.malformed("The credential date \(parts[1]) does not match the request date \(requestDate.prefix(8)).")
        }
        self.init(accessKey: parts[0], date: parts[1], region: parts[2], service: parts[3])
    }

    /// `date/region/service/aws4_request`.
    public var text: String { "\(date)/\(region)/\(service)/aws4_request" }
}

extension RequestVerifier {
    /// `20261125T001500Z` for a date.
    public static func v4Stamp(_ date: Date) -> String {
        let c = Calendar.utc.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }

    /// Parses `20261125T001500Z`.
    static func date(fromV4Stamp stamp: String) throws -> Date {
        let digits = Array(stamp.utf8)
        guard digits.count == 16, digits[8] == UInt8(ascii: "T"), digits[15] == UInt8(ascii: "Z") else {
            throw AuthenticationError.malformed("X-Amz-Date \"\(stamp)\" must read YYYYMMDDTHHMMSSZ.")
        }
        func number(_ range: Range<Int>) -> Int? { Int(String(decoding: digits[range], as: UTF8.self)) }
        guard let year = number(0..<4), let month = number(4..<6), let day = number(6..<8), let hour = number(9..<11),
            let minute = number(11..<13), let second = number(13..<15),
            let date = Calendar.utc.date(from: DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second))
        else { throw AuthenticationError.malformed("X-Amz-Date \"\(stamp)\" must read YYYYMMDDTHHMMSSZ.") }
        return date
    }

    /// Parses ISO 8601 times as SigV2 clients send them: `2026-11-25T00:15:00Z`, with optional fraction and offset.
    static func date(fromISO8601 text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 19 else { return nil }
        func number(_ range: Range<Int>) -> Int? { Int(String(decoding: bytes[range], as: UTF8.self)) }
        guard bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"),
            let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            var date = Calendar.utc.date(from: DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second))
        else { return nil }
        var rest = bytes[19...]
        if rest.first == UInt8(ascii: ".") {
            rest = rest.dropFirst()
            while let byte = rest.first, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { rest = rest.dropFirst() }
        }
        let zone = String(decoding: rest, as: UTF8.self)
        if zone.isEmpty || zone == "Z" { return date }
        let sign: Double = zone.hasPrefix("-") ? -1 : 1
        let parts = zone.dropFirst().split(separator: ":").compactMap { Double($0) }
        guard zone.hasPrefix("+") || zone.hasPrefix("-"), let hours = parts.first else { return nil }
        date.addTimeInterval(-sign * (hours * 3600 + (parts.count > 1 ? parts[1] * 60 : 0)))
        return date
    }

    /// Parses an HTTP date (`Wed, 25 Nov 2026 00:15:00 GMT`).
    static func date(fromHTTPDate text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEE, dd MMM yyyy HH:mm:ss Z", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }

    static func v4Stamp(fromHTTPDate text: String) -> String? { date(fromHTTPDate: text).map(v4Stamp) }
}

extension Calendar {
    static let utc: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()
}
