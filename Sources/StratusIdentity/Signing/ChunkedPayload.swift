import Crypto
import Foundation

/// Decodes an `aws-chunked` body signed chunk by chunk (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`).
///
/// Each chunk is `hex-size;chunk-signature=SIG\r\nDATA\r\n`; its signature chains from the previous
/// one (the first from the request's seed signature), and a zero-size chunk ends the body.
public struct ChunkedPayload: Sendable {
    /// The `x-amz-content-sha256` value that announces a chunk-signed body.
    public static let streamingPayload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    private static let emptyHash = AWSEncoding.hex(SHA256.hash(data: Data()))

    let signingKey: SymmetricKey
    let amzDate: String
    let scope: String
    let seedSignature: String

    /// Checks every chunk signature and returns the payload without the framing.
    public func decode(_ body: Data) throws -> Data {
        var payload = Data()
        var previous = seedSignature
        var index = body.startIndex
        while true {
            guard let lineEnd = body[index...].firstRange(of: Data("\r\n".utf8)) else {
                throw AuthenticationError.malformed("The aws-chunked body ends inside a chunk header.")
            }
            let header = String(decoding: body[index..<lineEnd.lowerBound], as: UTF8.self)
            let fields = header.split(separator: ";", maxSplits: 1)
            guard let size = fields.first.flatMap({ Int($0, radix: 16) }), size >= 0, fields.count == 2,
                fields[1].hasPrefix("chunk-signature=")
            else { throw AuthenticationError.malformed("Bad aws-chunked chunk header \"\(header.prefix(100))\".") }
            let signature = String(fields[1].dropFirst("chunk-signature=".count))
            let start = lineEnd.upperBound
            guard let end = body.index(start, offsetBy: size, limitedBy: body.endIndex) else {
                throw AuthenticationError.malformed("An aws-chunked chunk is shorter than its declared size \(size).")
            }
            let chunk = body[start..<end]
            let text = "AWS4-HMAC-SHA256-PAYLOAD\n\(amzDate)\n\(scope)\n\(previous)\n\(Self.emptyHash)\n" + AWSEncoding.hex(SHA256.hash(data: chunk))
            let expected = RequestVerifier.signature(key: signingKey, stringToSign: text)
            guard AWSEncoding.constantTimeEqual(expected, signature) else { throw AuthenticationError.mismatch() }
            previous = expected
            payload.append(chunk)
            guard body[end...].starts(with: Data("\r\n".utf8)) else {
                throw AuthenticationError.malformed("An aws-chunked chunk is not followed by CRLF.")
            }
            index = body.index(end, offsetBy: 2)
            if size == 0 { return payload }
        }
    }
}
