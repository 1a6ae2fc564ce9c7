/// Why a request's signature was refused, with the code each API reports it under.
public struct AuthenticationError: Error, Sendable, Equatable, CustomStringConvertible {
    enum Code: Sendable, Equatable {
        case missing
        case malformed
        case unknownAccessKey
        case signatureMismatch
        case skewed
        case expired
        case unsupported
        case payloadMismatch
        case disabled
        case wrongScope
    }

    let code: Code
    /// What went wrong, in words a client author can act on.
    public let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public static func missing() -> Self {
        Self(.missing, "The request is not signed: send an AWS Signature Version 4 (or 2) with an access key from `stratus credentials`.")
    }
    public static func malformed(_ detail: String) -> Self { Self(.malformed, detail) }
    public static func unknownAccessKey(_ key: String) -> Self {
        Self(.unknownAccessKey, "The access key \"\(key)\" does not exist; get yours with `stratus credentials USER -p PROJECT`.")
    }
    static func mismatch() -> Self {
        Self(.signatureMismatch, "The request signature we calculated does not match the signature you provided. Check your secret access key and signing method.")
    }

    /// The key is valid but its user may not sign in (disabled, deleted).
    public static func disabled(_ message: String) -> Self { Self(.disabled, message) }

    /// The SigV4 credential scope names another service or a region this server does not serve.
    public static func wrongScope(_ message: String) -> Self { Self(.wrongScope, message) }

    public var description: String { message }

    /// The EC2 error code (`AuthFailure`, `RequestExpired`, …).
    public var ec2Code: String {
        switch code {
        case .missing: "MissingAuthenticationToken"
        case .malformed: "IncompleteSignature"
        case .unknownAccessKey, .signatureMismatch, .payloadMismatch, .disabled, .wrongScope: "AuthFailure"
        case .skewed, .expired: "RequestExpired"
        case .unsupported: "InvalidParameterValue"
        }
    }

    /// The S3 error code (`SignatureDoesNotMatch`, `RequestTimeTooSkewed`, …).
    public var s3Code: String {
        switch code {
        case .missing: "AccessDenied"
        case .malformed, .wrongScope: "AuthorizationHeaderMalformed"
        case .unknownAccessKey: "InvalidAccessKeyId"
        case .signatureMismatch: "SignatureDoesNotMatch"
        case .skewed: "RequestTimeTooSkewed"
        case .expired, .disabled: "AccessDenied"
        case .unsupported: "InvalidRequest"
        case .payloadMismatch: "XAmzContentSHA256Mismatch"
        }
    }

    /// The HTTP status both APIs use for it.
    public var httpStatus: Int {
        switch code {
        case .malformed, .unsupported, .payloadMismatch: 400
        default: 403
        }
    }
}
