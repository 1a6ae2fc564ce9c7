import Crypto
import Foundation

/// Decodes an `aws-chunked` body signed chunk by chunk (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`).
///
/// Each chunk is `hex-size;chunk-signature=SIG\r\nDATA\r\n`; its signature chains from the previous
/// one (the first from the request's seed signature), and a zero-size chunk ends the body.
public struct ChunkedPayload: Sendable {
    /// The `x-amz-content-sha256` value that announces a chunk-signed body.
    public static let streamingPayload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    /// The same with a signed trailer (checksums) after the last chunk.
    public static let streamingPayloadTrailer = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
    /// Chunks without signatures, with a trailer (boto3 ≥ 1.36 over HTTPS).
    public static let unsignedPayloadTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    private static let emptyHash = AWSEncoding.hex(SHA256.hash(data: Data()))

    let signingKey: SymmetricKey
    let amzDate: String
    let scope: String
    let seedSignature: String

    /// The signature the chunk after `previous` must carry, for a chunk whose SHA-256 is `chunkSHA256` (hex):
    /// what a decoder that reads the body as it streams checks each chunk against.
    public func chunkSignature(previous: String, chunkSHA256: String) -> String {
        let text = "AWS4-HMAC-SHA256-PAYLOAD\n\(amzDate)\n\(scope)\n\(previous)\n\(Self.emptyHash)\n" + chunkSHA256
        return RequestVerifier.signature(key: signingKey, stringToSign: text)
    }

    /// The request's own signature, which the first chunk's chains from.
    public var seed: String { seedSignature }

    /// The signature of the trailer (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`), chained from the last chunk's.
    public func trailerSignature(previous: String, trailer: String) -> String {
        let text = "AWS4-HMAC-SHA256-TRAILER\n\(amzDate)\n\(scope)\n\(previous)\n" + AWSEncoding.hex(SHA256.hash(data: Data(trailer.utf8)))
        return RequestVerifier.signature(key: signingKey, stringToSign: text)
    }

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
