import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import StratusIdentity
import StratusModel
import StratusStore

extension S3API {
    /// The request headers kept with an object and returned on GET and HEAD.
    static let storedHeaders: [String] = ["content-type", "content-encoding", "content-disposition", "content-language", "cache-control", "expires"]

    static func objectHeaders(_ request: Request) -> [String: String] {
        var headers: [String: String] = [:]
        for field in request.headers {
            let name = field.name.canonicalName
            if storedHeaders.contains(name) || name.hasPrefix("x-amz-meta-") { headers[name] = field.value }
        }
        // aws-chunked is the framing of this upload, not an encoding of the object.
        if let encoding = headers["content-encoding"] {
            let rest = encoding.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0 != "aws-chunked" }
            headers["content-encoding"] = rest.isEmpty ? nil : rest.joined(separator: ",")
        }
        if headers["content-type"] == nil { headers["content-type"] = "binary/octet-stream" }
        return headers
    }

    static func etag(_ md5: Data) -> String { "\"" + AWSEncoding.hex(md5) + "\"" }

    /// Streams the request's body to a temporary file and checks it against every digest the
    /// client declared (x-amz-content-sha256, Content-MD5, x-amz-checksum-*, trailers).
    /// Bodies up to this size are kept in memory and stored in the object's row.
    static let inlineLimit: Int64 = 64 << 10

    /// The declared length of the object's bytes (aws-chunked framing aside), if any.
    static func declaredLength(_ request: Request) -> Int64? {
        if let decoded = request.headers[.init("x-amz-decoded-content-length")!].flatMap(Int64.init) { return decoded }
        if request.headers[.contentEncoding]?.contains("aws-chunked") == true { return nil }
        return request.headers[.contentLength].flatMap(Int64.init)
    }

    /// - Parameter inline: keep a body of at most `inlineLimit` declared bytes in memory.
    func receive(_ request: Request, _ auth: Auth, limit: Int64 = S3API.maximumPut, inline: Bool = false) async throws -> ReceivedBody {
        let content = request.headers[.init("x-amz-content-sha256")!]
        var decoder: AWSChunkedDecoder?
        switch content {
        case ChunkedPayload.streamingPayload, ChunkedPayload.streamingPayloadTrailer:
            guard let signing = auth?.verified.chunkedPayload else { throw S3Error.signatureMismatch("a chunk-signed body needs a SigV4 Authorization header") }
            decoder = AWSChunkedDecoder(signing: signing)
        case ChunkedPayload.unsignedPayloadTrailer:
            decoder = AWSChunkedDecoder(signing: nil)
        default:
            if request.headers[.contentEncoding]?.contains("aws-chunked") == true { decoder = AWSChunkedDecoder(signing: nil) }
        }
        let wantSHA256 = content.map { $0.count == 64 } ?? false
        var algorithms = Set<ChecksumAlgorithm>()
        for field in request.headers { if let algorithm = ChecksumAlgorithm(header: field.name.canonicalName) { algorithms.insert(algorithm) } }
        for name in (request.headers[.init("x-amz-trailer")!] ?? "").split(separator: ",") {
            if let algorithm = ChecksumAlgorithm(header: name.trimmingCharacters(in: .whitespaces)) { algorithms.insert(algorithm) }
        }
        if let named = request.headers[.init("x-amz-sdk-checksum-algorithm")!] {
            guard let algorithm = ChecksumAlgorithm(rawValue: named.uppercased()) else {
                throw S3Error.invalidArgument("Value for x-amz-sdk-checksum-algorithm header is invalid: \(named).")
            }
            algorithms.insert(algorithm)
        }
        let received: ReceivedBody
        if inline, let length = Self.declaredLength(request), length <= Self.inlineLimit {
            received = try await BodyReceiver.receiveInMemory(request.body, chunked: decoder, checksums: algorithms, sha256: wantSHA256, limit: length)
        } else {
            received = try await BodyReceiver.receive(request.body, to: files.newTemporary(), chunked: decoder, checksums: algorithms, sha256: wantSHA256, limit: limit)
        }
        do {
            if let content, wantSHA256, let sha256 = received.sha256, AWSEncoding.hex(sha256) != content.lowercased() {
                throw S3Error("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.")
            }
            if let length = request.headers[.init("x-amz-decoded-content-length")!].flatMap(Int64.init), length != received.size {
                throw S3Error.incompleteBody("x-amz-decoded-content-length says \(length) bytes, the body had \(received.size)")
            }
            if let md5 = request.headers[.init("Content-MD5")!] {
                guard let declared = Data(base64Encoded: md5), declared.count == 16 else { throw S3Error("InvalidDigest", "The Content-MD5 you specified was invalid.") }
                guard declared == received.md5 else { throw S3Error.badDigest("Content-MD5") }
            }
            for algorithm in algorithms {
                let declared = request.headers[.init(algorithm.header)!] ?? received.trailers[algorithm.header]
                if let declared, declared != received.checksums[algorithm] { throw S3Error.badDigest(algorithm.rawValue) }
            }
        } catch {
            unlink(received.temporaryPath)
            throw error
        }
        return received
    }

    /// The checksums to keep with an object: those the client declared (verified by `receive`).
    static func declaredChecksums(_ received: ReceivedBody, _ request: Request) -> [String: String] {
        var kept: [String: String] = [:]
        for (algorithm, value) in received.checksums where request.headers[.init(algorithm.header)!] != nil || received.trailers[algorithm.header] != nil {
            kept[algorithm.rawValue] = value
        }
        return kept
    }

    /// `If-Match` / `If-None-Match: *` on a write: decided against the current ETag inside the
    /// store's transaction, so two conditional writers cannot both win.
    static func writeCondition(_ request: Request) -> (@Sendable (String?) -> Bool)? {
        let ifMatch = request.headers[.ifMatch]
        let ifNoneMatch = request.headers[.ifNoneMatch]
        guard ifMatch != nil || ifNoneMatch != nil else { return nil }
        return { current in
            if let ifMatch { guard let current, etagMatches(ifMatch, current) else { return false } }
            if let ifNoneMatch {
                if ifNoneMatch.trimmingCharacters(in: .whitespaces) == "*" { return current == nil }
                if let current, etagMatches(ifNoneMatch, current) { return false }
            }
            return true
        }
    }

    static func etagMatches(_ header: String, _ etag: String) -> Bool {
        let wanted = header.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "W/", with: "") }
        let plain = etag.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        return wanted.contains { $0 == "*" || $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) == plain }
    }

    func putObject(_ bucketName: String, _ key: String, _ auth: Auth, _ request: Request, _ context: S3RequestContext) async throws -> Response {
        _ = try bucketRecord(bucketName, try signed(auth?.principal), .write)
        let tags = try ObjectTags.header(request) ?? [:]
        try checkQuotaBeforeBody(request, bucket: bucketName, key: key)
        let received = try await receive(request, auth, inline: true)
        // A small object lives in its row; a larger one in a file, moved into place now.
        var file = ""
        if received.data == nil {
            do { file = try files.commit(received.temporaryPath) } catch {
                unlink(received.temporaryPath)
                throw error
            }
        }
        let etag = Self.etag(received.md5)
        let record = ObjectRecord(
            bucket: bucketName, key: key, file: file, size: received.size, etag: etag, lastModified: Timestamp.string(Date()),
            headers: Self.objectHeaders(request), checksums: Self.declaredChecksums(received, request), md5: AWSEncoding.hex(received.md5), tags: tags,
            data: received.data)
        let outcome: (written: Bool, replaced: String?)
        do { outcome = try await committer.put(record, condition: Self.writeCondition(request)) } catch {
            files.remove(file)
            throw error
        }
        guard outcome.written else {
            files.remove(file)
            if request.headers[.ifMatch] != nil, try store.object(bucket: bucketName, key: key) == nil { throw S3Error.noSuchKey(key) }
            throw S3Error.preconditionFailed
        }
        files.remove(outcome.replaced)
        var headers: HTTPFields = [.eTag: etag, .contentLength: "0"]
        for (algorithm, value) in record.checksums { headers[.init("x-amz-checksum-" + algorithm.lowercased())!] = value }
        return Response(status: .ok, headers: headers)
    }

    /// Refuses a body declared too large for the project's object quota before reading it
    /// (`QuotaExceeded`, 403). Small bodies are left to the write's own check: reading them costs
    /// less than asking twice.
    func checkQuotaBeforeBody(_ request: Request, bucket: String, key: String, upload: String? = nil, part: Int = 0, bytes: Int64? = nil) throws {
        guard let length = bytes ?? Self.declaredLength(request), length > Self.inlineLimit else { return }
        do { try store.checkObjectQuota(bucket: bucket, key: key, upload: upload, part: part, bytes: length) } catch {
            throw Self.s3Error(error)
        }
    }

    func object(_ bucket: String, _ key: String) throws -> ObjectRecord {
        guard let object = try store.object(bucket: bucket, key: key) else { throw S3Error.noSuchKey(key) }
        return object
    }

    /// Objects up to this size are read at once and sent from memory; larger ones stream.
    static let smallObject: Int64 = 1 << 20

    func getObject(_ bucketName: String, _ key: String, _ call: S3Call, _ principal: Principal?, _ request: Request, _ context: S3RequestContext, head: Bool) async throws -> Response {
        let (bucket, found) = try store.bucketAndObject(bucket: bucketName, key: key)
        guard let bucket else { throw S3Error.noSuchBucket(bucketName) }
        try authorize(bucket, principal, .read)
        guard let object = found else { throw S3Error.noSuchKey(key) }
        let modified = Timestamp.date(object.lastModified) ?? Date()
        // Conditions in RFC 7232's order, as S3 evaluates them.
        if let ifMatch = request.headers[.ifMatch], !Self.etagMatches(ifMatch, object.etag) { throw S3Error.preconditionFailed }
        if request.headers[.ifMatch] == nil, let since = request.headers[.ifUnmodifiedSince].flatMap(HTTPDate.parse), modified.timeIntervalSince(since) >= 1 {
            throw S3Error.preconditionFailed
        }
        if let ifNoneMatch = request.headers[.ifNoneMatch], Self.etagMatches(ifNoneMatch, object.etag) { return notModified(object) }
        if request.headers[.ifNoneMatch] == nil, let since = request.headers[.ifModifiedSince].flatMap(HTTPDate.parse), modified.timeIntervalSince(since) < 1 {
            return notModified(object)
        }
        var headers: HTTPFields = [.eTag: object.etag, .lastModified: HTTPDate.format(modified), .acceptRanges: "bytes"]
        for (name, value) in object.headers { if let field = HTTPField.Name(name) { headers[field] = value } }
        ObjectTags.count(object.tags, into: &headers)
        // response-* overrides, for signed requests (presigned downloads name their file this way).
        if principal != nil {
            for (parameter, header) in [("response-content-type", "content-type"), ("response-content-language", "content-language"), ("response-expires", "expires"),
                                        ("response-cache-control", "cache-control"), ("response-content-disposition", "content-disposition"), ("response-content-encoding", "content-encoding")] {
                if let value = call.query[parameter] { headers[HTTPField.Name(header)!] = value }
            }
        }
        var range: ClosedRange<Int64>?
        if let header = request.headers[.range] {
            range = try HTTPRange.parse(header, size: object.size)
        } else if let part = call.query["partNumber"] {
            guard Int(part) == 1 else { throw S3Error("InvalidPartNumber", "The requested partnumber is not satisfiable", status: 416) }
        }
        if call.query["ChecksumMode"]?.uppercased() == "ENABLED" || request.headers[.init("x-amz-checksum-mode")!]?.uppercased() == "ENABLED", range == nil {
            for (algorithm, value) in object.checksums { headers[.init("x-amz-checksum-" + algorithm.lowercased())!] = value }
        }
        let status: HTTPResponse.Status
        if let range {
            status = .partialContent
            headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound)/\(object.size)"
            headers[.contentLength] = "\(range.upperBound - range.lowerBound + 1)"
        } else {
            status = .ok
            headers[.contentLength] = "\(object.size)"
        }
        if head || object.size == 0 { return Response(status: status, headers: headers) }
        let span = range.map { Int($0.lowerBound)...Int($0.upperBound) } ?? 0...Int(object.size - 1)
        if let data = object.data {
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data[data.startIndex + span.lowerBound...data.startIndex + span.upperBound])))
        }
        if span.count <= Self.smallObject {
            // One pread from the page cache costs less than a hop to NIO's file thread pool.
            return Response(status: status, headers: headers, body: .init(byteBuffer: try files.read(object.file, span)))
        }
        let body = try await FileIO().loadFile(path: files.path(object.file), range: span, context: context, chunkLength: 1 << 20)
        return Response(status: status, headers: headers, body: body)
    }

    private func notModified(_ object: ObjectRecord) -> Response {
        Response(status: .notModified, headers: [.eTag: object.etag, .lastModified: HTTPDate.format(Timestamp.date(object.lastModified) ?? Date())])
    }

    func deleteObject(_ bucketName: String, _ key: String, _ principal: Principal?) throws -> Response {
        _ = try bucketRecord(bucketName, try signed(principal), .write)
        files.remove(try store.deleteObject(bucket: bucketName, key: key))
        // As on S3, deleting a key that does not exist succeeds.
        return Response(status: .noContent)
    }

    func deleteObjects(_ bucketName: String, _ principal: Principal?, _ request: Request) async throws -> Response {
        _ = try bucketRecord(bucketName, try signed(principal), .write)
        let document = try await smallBody(request)
        let objects = SimpleXML.elements("Object", in: document)
        guard !objects.isEmpty else { throw S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.") }
        guard objects.count <= 1000 else { throw S3Error("MalformedXML", "A DeleteObjects request names at most 1000 keys.") }
        let quiet = SimpleXML.value("Quiet", in: document)?.lowercased() == "true"
        var body = ""
        for object in objects {
            guard let key = SimpleXML.value("Key", in: object) else { throw S3Error("MalformedXML", "Each Object needs a Key.") }
            files.remove(try store.deleteObject(bucket: bucketName, key: key))
            if !quiet { body += "<Deleted><Key>\(S3XML.escape(key))</Key></Deleted>" }
        }
        return S3XML.response("DeleteResult", body)
    }

    /// `x-amz-copy-source: /bucket/key` (URL-encoded, optionally `?versionId=`), checked for read access.
    func copySource(_ request: Request, _ principal: Principal?) throws -> ObjectRecord {
        let header = request.headers[.init("x-amz-copy-source")!] ?? ""
        var source = AWSEncoding.decode(header.split(separator: "?", maxSplits: 1).first ?? "")
        if source.hasPrefix("/") { source.removeFirst() }
        guard let slash = source.firstIndex(of: "/"), source.index(after: slash) < source.endIndex else {
            throw S3Error.invalidArgument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
        }
        let bucket = String(source[..<slash])
        let key = String(source[source.index(after: slash)...])
        _ = try bucketRecord(bucket, principal, .read)
        let object = try object(bucket, key)
        let modified = Timestamp.date(object.lastModified) ?? Date()
        if let ifMatch = request.headers[.init("x-amz-copy-source-if-match")!], !Self.etagMatches(ifMatch, object.etag) { throw S3Error.preconditionFailed }
        if let ifNoneMatch = request.headers[.init("x-amz-copy-source-if-none-match")!], Self.etagMatches(ifNoneMatch, object.etag) { throw S3Error.preconditionFailed }
        if let since = request.headers[.init("x-amz-copy-source-if-unmodified-since")!].flatMap(HTTPDate.parse), modified.timeIntervalSince(since) >= 1 { throw S3Error.preconditionFailed }
        if let since = request.headers[.init("x-amz-copy-source-if-modified-since")!].flatMap(HTTPDate.parse), modified.timeIntervalSince(since) < 1 { throw S3Error.preconditionFailed }
        return object
    }

    /// Copies `range` of an object's bytes: a file's to a new temporary file (fsynced), a small
    /// object's (kept in its row) in memory. Returns the copy with its size and MD5.
    func copyBytes(_ source: ObjectRecord, range: ClosedRange<Int64>?) async throws -> ReceivedBody {
        if let data = source.data {
            let slice = range.map { data[data.startIndex + Int($0.lowerBound)...data.startIndex + Int($0.upperBound)] } ?? data[...]
            let once = AsyncStream<ByteBuffer> { continuation in
                continuation.yield(ByteBuffer(bytes: slice))
                continuation.finish()
            }
            return try await BodyReceiver.receiveInMemory(once, chunked: nil, checksums: [], sha256: false, limit: Int64(slice.count))
        }
        let span = range ?? (source.size > 0 ? 0...(source.size - 1) : nil)
        guard (span.map { $0.upperBound - $0.lowerBound + 1 } ?? 0) <= Self.maximumPut else {
            throw S3Error("InvalidRequest", "The specified copy source is larger than the maximum allowable size for a copy source: \(Self.maximumPut); copy it in parts with UploadPartCopy.")
        }
        guard let span else {
            return try await BodyReceiver.receiveInMemory(AsyncStream { $0.finish() }, chunked: nil, checksums: [], sha256: false, limit: 0)
        }
        let chunks = try FileChunks(path: files.path(source.file), range: span)
        return try await BodyReceiver.receive(chunks, to: files.newTemporary(), chunked: nil, checksums: [], sha256: false, limit: Self.maximumPut)
    }

    func copyObject(_ bucketName: String, _ key: String, _ auth: Auth, _ request: Request) async throws -> Response {
        let principal = try signed(auth?.principal)
        _ = try bucketRecord(bucketName, principal, .write)
        let source = try copySource(request, principal)
        let directive = request.headers[.init("x-amz-metadata-directive")!]?.uppercased() ?? "COPY"
        guard directive == "COPY" || directive == "REPLACE" else { throw S3Error.invalidArgument("Unknown metadata directive \(directive).") }
        let tagging = request.headers[.init("x-amz-tagging-directive")!]?.uppercased() ?? "COPY"
        guard tagging == "COPY" || tagging == "REPLACE" else { throw S3Error.invalidArgument("Unknown tagging directive \(tagging).") }
        // With COPY the source's tags go along and x-amz-tagging is ignored, as on S3.
        let tags = tagging == "REPLACE" ? try ObjectTags.header(request) ?? [:] : source.tags
        if source.bucket == bucketName, source.key == key, directive == "COPY" {
            throw S3Error("InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
        }
        let copied = try await copyBytes(source, range: nil)
        var file = ""
        if copied.data == nil {
            do { file = try files.commit(copied.temporaryPath) } catch {
                unlink(copied.temporaryPath)
                throw error
            }
        }
        let now = Timestamp.string(Date())
        let record = ObjectRecord(
            bucket: bucketName, key: key, file: file, size: copied.size, etag: Self.etag(copied.md5), lastModified: now,
            headers: directive == "REPLACE" ? Self.objectHeaders(request) : source.headers, checksums: source.checksums, md5: AWSEncoding.hex(copied.md5),
            tags: tags, data: copied.data)
        let outcome: (written: Bool, replaced: String?)
        do { outcome = try await committer.put(record, condition: Self.writeCondition(request)) } catch {
            files.remove(file)
            throw error
        }
        guard outcome.written else {
            files.remove(file)
            throw S3Error.preconditionFailed
        }
        files.remove(outcome.replaced)
        return S3XML.response("CopyObjectResult", "<LastModified>\(S3XML.timestamp(now))</LastModified><ETag>\(S3XML.escape(record.etag))</ETag>")
    }
}

/// HTTP dates (RFC 7231 IMF-fixdate), formatted and parsed without a shared formatter.
enum HTTPDate {
    static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func format(_ date: Date) -> String {
        var time = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }

    static func parse(_ text: String) -> Date? {
        // "Tue, 01 Dec 2026 14:00:00 GMT"
        let fields = text.split(separator: " ")
        guard fields.count == 6, let day = Int(fields[1]), let month = months.firstIndex(of: String(fields[2])), let year = Int(fields[3]) else {
            return Timestamp.date(text)
        }
        let clock = fields[4].split(separator: ":").compactMap { Int($0) }
        // A date out of these ranges is no date: the header is ignored, as an unparsable one is.
        guard clock.count == 3, (1...31).contains(day), (1970...9999).contains(year), (0...23).contains(clock[0]), (0...59).contains(clock[1]), (0...60).contains(clock[2]) else {
            return nil
        }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(clock[0])
        parts.tm_min = Int32(clock[1])
        parts.tm_sec = Int32(clock[2])
        return Date(timeIntervalSince1970: TimeInterval(timegm(&parts)))
    }
}

/// `Range: bytes=…` as S3 reads it: one range; `a-b`, `a-`, `-n`.
enum HTTPRange {
    static func parse(_ header: String, size: Int64) throws -> ClosedRange<Int64>? {
        guard header.hasPrefix("bytes="), !header.contains(",") else { return nil }  // S3 ignores what it does not support
        let spec = header.dropFirst("bytes=".count)
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        let unsatisfiable = S3Error("InvalidRange", "The requested range is not satisfiable", status: 416).with("RangeRequested", header).with("ActualObjectSize", "\(size)")
        if parts[0].isEmpty {
            guard let suffix = Int64(parts[1]), suffix > 0, size > 0 else { throw unsatisfiable }
            return max(0, size - suffix)...(size - 1)
        }
        guard let start = Int64(parts[0]) else { return nil }
        guard start < size else { throw unsatisfiable }
        let end = parts[1].isEmpty ? size - 1 : min(Int64(parts[1]) ?? (size - 1), size - 1)
        guard end >= start else { return nil }
        return start...end
    }
}

/// Just enough XML reading for S3's small request documents (DeleteObjects, CompleteMultipartUpload).
enum SimpleXML {
    /// The contents of each `<name>…</name>` in order.
    static func elements(_ name: String, in text: String) -> [String] {
        var found: [String] = []
        var rest = text[...]
        while let open = rest.range(of: "<\(name)>"), let close = rest.range(of: "</\(name)>", range: open.upperBound..<rest.endIndex) {
            found.append(String(rest[open.upperBound..<close.lowerBound]))
            rest = rest[close.upperBound...]
        }
        return found
    }

    /// The decoded text of the first `<name>…</name>`.
    static func value(_ name: String, in text: String) -> String? { elements(name, in: text).first.map(decode) }

    static func decode(_ text: String) -> String {
        guard text.contains("&") else { return text }
        var out = ""
        var index = text.startIndex
        while index < text.endIndex {
            // An entity is at most a few characters: `;` is looked for nearby, never across the
            // whole text (a body of a million `&` would cost a trillion steps).
            if text[index] == "&", let semicolon = text[index...].prefix(12).firstIndex(of: ";") {
                let entity = text[text.index(after: index)..<semicolon]
                var replacement: String?
                switch entity {
                case "amp": replacement = "&"
                case "lt": replacement = "<"
                case "gt": replacement = ">"
                case "quot": replacement = "\""
                case "apos": replacement = "'"
                default:
                    if entity.hasPrefix("#x"), let value = UInt32(entity.dropFirst(2), radix: 16), let scalar = Unicode.Scalar(value) { replacement = String(Character(scalar)) }
                    else if entity.hasPrefix("#"), let value = UInt32(entity.dropFirst()), let scalar = Unicode.Scalar(value) { replacement = String(Character(scalar)) }
                }
                if let replacement {
                    out += replacement
                    index = text.index(after: semicolon)
                    continue
                }
            }
            out.append(text[index])
            index = text.index(after: index)
        }
        return out
    }
}

/// A stored file's bytes (or a range of them) as 1 MiB buffers, read as they are consumed.
/// The file is opened at once (a missing file is an error, not an empty object), closed when
/// the last iterator goes (whether or not it reached the end), and a read that fails or ends
/// before the range does is an error, never a short object.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    final class Descriptor: Sendable {
        let value: Int32
        init(_ value: Int32) { self.value = value }
        deinit { close(value) }
    }

    let descriptor: Descriptor
    let start: Int64
    let end: Int64?

    init(path: String, range: ClosedRange<Int64>?) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw S3Error("InternalError", "an object's file cannot be opened (errno \(errno))", status: 500) }
        descriptor = Descriptor(fd)
        start = range?.lowerBound ?? 0
        end = range.map { $0.upperBound + 1 }
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let descriptor: Descriptor
        var offset: Int64
        let end: Int64?

        mutating func next() async throws -> ByteBuffer? {
            let want = Int(Swift.min(Int64(1 << 20), (end ?? Int64.max) - offset))
            guard want > 0 else { return nil }
            var buffer = ByteBufferAllocator().buffer(capacity: want)
            var result = 0
            repeat {
                buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { pointer in
                    result = pread(descriptor.value, pointer.baseAddress, want, off_t(offset))
                    return Swift.max(0, result)
                }
            } while result < 0 && errno == EINTR
            guard result >= 0 else { throw S3Error("InternalError", "reading an object's file failed (errno \(errno))", status: 500) }
            if result == 0 {
                if end != nil { throw S3Error("InternalError", "an object's file is shorter than recorded", status: 500) }
                return nil
            }
            offset += Int64(result)
            return buffer
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(descriptor: descriptor, offset: start, end: end)
    }
}
