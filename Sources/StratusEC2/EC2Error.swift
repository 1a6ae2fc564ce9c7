import Foundation

/// An EC2 API error: the code clients switch on (`InvalidInstanceID.NotFound`), a message and the HTTP status.
public struct EC2Error: Error, Sendable, CustomStringConvertible {
    public let code: String
    public let message: String
    public let status: Int

    public init(_ code: String, _ message: String, status: Int = 400) {
        self.code = code
        self.message = message
        self.status = status
    }

    public var description: String { "\(code): \(message)" }

    static func missing(_ parameter: String) -> EC2Error {
        EC2Error("MissingParameter", "The request must contain the parameter \(parameter)")
    }

    static func invalid(_ parameter: String, _ value: String, _ why: String) -> EC2Error {
        EC2Error("InvalidParameterValue", "Value (\(value)) for parameter \(parameter) is invalid. \(why)")
    }

    static func unauthorized(_ message: String) -> EC2Error {
        EC2Error("UnauthorizedOperation", "You are not authorized to perform this operation. \(message)", status: 403)
    }

    /// `InvalidInstanceID.NotFound` and friends for ids that do not exist (or that the caller may not see).
    static func notFound(_ kind: String, _ ids: [String]) -> EC2Error {
        let noun = ids.count == 1 ? "ID '\(ids[0])' does not exist" : "IDs '\(ids.joined(separator: ", "))' do not exist"
        return EC2Error("\(kind).NotFound", "The \(kind.replacingOccurrences(of: "Invalid", with: "").replacingOccurrences(of: "ID", with: "")) \(noun)")
    }

    /// `InvalidInstanceID.Malformed` for ids not shaped like `i-0123abcd`.
    static func malformed(_ kind: String, _ id: String) -> EC2Error {
        EC2Error("\(kind).Malformed", "Invalid id: \"\(id)\"")
    }
}
