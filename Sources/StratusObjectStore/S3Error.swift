import Foundation

/// An S3 error: the code clients switch on, a message, the HTTP status, and the resource it is about.
public struct S3Error: Error, Sendable, CustomStringConvertible {
    public let code: String
    public let message: String
    public let status: Int
    var resource: String?
    /// Extra elements of the error document (`<BucketName>`, `<Key>`, …).
    var details: [(String, String)] = []

    public init(_ code: String, _ message: String, status: Int = 400) {
        self.code = code
        self.message = message
        self.status = status
    }

    public var description: String { "\(code): \(message)" }

    func with(_ name: String, _ value: String) -> S3Error {
        var copy = self
        copy.details.append((name, value))
        return copy
    }

    static func noSuchBucket(_ bucket: String) -> S3Error {
        S3Error("NoSuchBucket", "The specified bucket does not exist", status: 404).with("BucketName", bucket)
    }

    static func noSuchKey(_ key: String) -> S3Error {
        S3Error("NoSuchKey", "The specified key does not exist.", status: 404).with("Key", key)
    }

    static func noSuchUpload(_ id: String) -> S3Error {
        S3Error("NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.", status: 404).with("UploadId", id)
    }

    static func accessDenied(_ why: String) -> S3Error { S3Error("AccessDenied", "Access Denied: \(why)", status: 403) }

    static func incompleteBody(_ why: String) -> S3Error {
        S3Error("IncompleteBody", "The request body is not well-formed aws-chunked data: \(why).")
    }

    static func signatureMismatch(_ why: String) -> S3Error {
        S3Error("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided: \(why).", status: 403)
    }

    static func badDigest(_ what: String) -> S3Error {
        S3Error("BadDigest", "The \(what) you specified did not match the calculated checksum.")
    }

    static func invalidArgument(_ message: String) -> S3Error { S3Error("InvalidArgument", message) }

    static let preconditionFailed = S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold", status: 412)
}
