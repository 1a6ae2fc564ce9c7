import Crypto
import Foundation
import NIOCore
import StratusIdentity

/// Decodes an `aws-chunked` body as it streams: `hex-size[;chunk-signature=SIG]\r\n DATA \r\n`
/// chunks, a zero-size chunk, then optional trailer lines (`x-amz-checksum-crc32:…`) and an empty
/// line. With a `ChunkedPayload` every chunk's signature is checked against the chain from the
/// request's signature (and the trailer's, when signed); without one the chunks carry none
/// (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`).
struct AWSChunkedDecoder {
    enum State {
        case header
        case data(remaining: Int)
        case dataEnd
        case trailer
        case done
    }

    let signing: ChunkedPayload?
    private(set) var state = State.header
    private var line: [UInt8] = []
    private var previous: String
    private var expectedSignature: String?
    private var chunkHash = SHA256()
    /// Trailer headers, lower-cased names.
    private(set) var trailers: [String: String] = [:]
    private var trailerSignature: String?
    /// How many bytes a header or trailer line may have (a garbled body is refused, not buffered).
    static let maximumLine = 4096
    static let maximumTrailers = 16

    init(signing: ChunkedPayload?) {
        self.signing = signing
        previous = signing?.seed ?? ""
    }

    var isDone: Bool { if case .done = state { true } else { false } }

    /// Feeds the next bytes of the body and calls `emit` with each run of payload bytes.
    mutating func feed(_ buffer: ByteBuffer, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        try buffer.withUnsafeReadableBytes { bytes in
            var index = 0
            while index < bytes.count {
                switch state {
                case .header:
                    guard let newline = takeLine(bytes, &index) else { continue }
                    try startChunk(newline)
                case .data(let remaining):
                    let count = min(remaining, bytes.count - index)
                    let run = UnsafeRawBufferPointer(rebasing: bytes[index..<index + count])
                    if signing != nil { chunkHash.update(bufferPointer: run) }
                    try emit(run)
                    index += count
                    state = remaining == count ? .dataEnd : .data(remaining: remaining - count)
                    if remaining == count { try endChunkData() }
                case .dataEnd:
                    guard let newline = takeLine(bytes, &index) else { continue }
                    guard newline.isEmpty else { throw S3Error.incompleteBody("a chunk is not followed by CRLF") }
                    state = .header
                case .trailer:
                    guard let newline = takeLine(bytes, &index) else { continue }
                    try trailerLine(newline)
                case .done:
                    // Anything after the final CRLF is not part of the object.
                    index = bytes.count
                }
            }
        }
    }

    /// Checks the body ended where aws-chunked says it ends.
    func finish() throws {
        guard isDone else { throw S3Error.incompleteBody("the aws-chunked body ends before its final chunk") }
    }

    /// One CRLF-terminated line, or nil when the buffer ends first (kept for the next feed).
    private mutating func takeLine(_ bytes: UnsafeRawBufferPointer, _ index: inout Int) -> [UInt8]? {
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if byte == UInt8(ascii: "\n"), line.last == UInt8(ascii: "\r") {
                defer { line.removeAll(keepingCapacity: true) }
                return Array(line.dropLast())
            }
            line.append(byte)
            if line.count > Self.maximumLine { line.removeAll(); return [UInt8](repeating: 0, count: 1) }
        }
        return nil
    }

    private mutating func startChunk(_ header: [UInt8]) throws {
        let text = String(decoding: header, as: UTF8.self)
        let fields = text.split(separator: ";", maxSplits: 1)
        guard let size = fields.first.flatMap({ Int($0.trimmingCharacters(in: .whitespaces), radix: 16) }), size >= 0 else {
            throw S3Error.incompleteBody("bad aws-chunked chunk header \"\(text.prefix(80))\"")
        }
        if signing != nil {
            guard fields.count == 2, fields[1].hasPrefix("chunk-signature=") else {
                throw S3Error.incompleteBody("a signed aws-chunked chunk needs chunk-signature=")
            }
            expectedSignature = String(fields[1].dropFirst("chunk-signature=".count))
        }
        chunkHash = SHA256()
        if size == 0 {
            try endChunkData()
            state = .trailer
        } else {
            state = .data(remaining: size)
        }
    }

    /// The chunk's bytes are all in: its signature must be the next in the chain.
    private mutating func endChunkData() throws {
        guard let signing, let claimed = expectedSignature else { return }
        let expected = signing.chunkSignature(previous: previous, chunkSHA256: AWSEncoding.hex(chunkHash.finalize()))
        guard AWSEncoding.constantTimeEqual(expected, claimed.lowercased()) else { throw S3Error.signatureMismatch("a chunk's signature does not match") }
        previous = expected
        expectedSignature = nil
    }

    private mutating func trailerLine(_ content: [UInt8]) throws {
        if content.isEmpty {
            if signing != nil, trailerSignature == nil, !trailers.isEmpty {
                throw S3Error.signatureMismatch("a signed body's trailer needs x-amz-trailer-signature")
            }
            if let signing, let claimed = trailerSignature {
                let text = trailers.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)\n" }.joined()
                guard AWSEncoding.constantTimeEqual(signing.trailerSignature(previous: previous, trailer: text), claimed.lowercased()) else {
                    throw S3Error.signatureMismatch("the trailer's signature does not match")
                }
            }
            state = .done
            return
        }
        let text = String(decoding: content, as: UTF8.self)
        guard let colon = text.firstIndex(of: ":") else { throw S3Error.incompleteBody("bad trailer line \"\(text.prefix(80))\"") }
        let name = text[..<colon].lowercased()
        let value = text[text.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        if name == "x-amz-trailer-signature" {
            trailerSignature = value
        } else {
            // A trailer carries a checksum or two: a stream of lines is refused, not kept.
            guard trailers.count < Self.maximumTrailers else { throw S3Error.incompleteBody("more than \(Self.maximumTrailers) trailer headers") }
            trailers[name] = value
        }
    }
}
