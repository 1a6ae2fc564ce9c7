import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import StratusIdentity
import StratusModel
import StratusStore

extension S3API {
    /// S3's smallest part but the last.
    static let minimumPart: Int64 = 5 << 20

    func upload(_ bucket: String, _ key: String, _ id: String) throws -> UploadRecord {
        guard let upload = try store.upload(id), upload.bucket == bucket, upload.key == key else { throw S3Error.noSuchUpload(id) }
        return upload
    }

    func createUpload(_ bucketName: String, _ key: String, _ principal: Principal?, _ request: Request) throws -> Response {
        _ = try bucketRecord(bucketName, try signed(principal), .write)
        let tags = try ObjectTags.header(request) ?? [:]
        let id = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased() + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        var headers = Self.objectHeaders(request)
        if let algorithm = request.headers[.init("x-amz-checksum-algorithm")!] { headers["x-amz-checksum-algorithm"] = algorithm.uppercased() }
        try store.createUpload(UploadRecord(id: id, bucket: bucketName, key: key, initiated: Timestamp.string(Date()), headers: headers, tags: tags))
        return S3XML.response("InitiateMultipartUploadResult", "<Bucket>\(S3XML.escape(bucketName))</Bucket><Key>\(S3XML.escape(key))</Key><UploadId>\(id)</UploadId>")
    }

    func uploadPart(_ bucketName: String, _ key: String, upload id: String, _ call: S3Call, _ auth: Auth, _ request: Request, _ context: S3RequestContext) async throws -> Response {
        let principal = try signed(auth?.principal)
        _ = try bucketRecord(bucketName, principal, .write)
        guard let number = call.query["partNumber"].flatMap(Int.init), (1...10_000).contains(number) else {
            throw S3Error.invalidArgument("Part number must be an integer between 1 and 10000, inclusive")
        }
        _ = try upload(bucketName, key, id)
        let received: ReceivedBody
        var copied = false
        if request.headers[.init("x-amz-copy-source")!] != nil {
            let source = try copySource(request, principal)
            var range: ClosedRange<Int64>?
            if let header = request.headers[.init("x-amz-copy-source-range")!] {
                guard let parsed = try HTTPRange.parse(header, size: source.size) else { throw S3Error.invalidArgument("The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy") }
                range = parsed
            }
            try checkQuotaBeforeBody(request, bucket: bucketName, key: key, upload: id, part: number, bytes: range.map { $0.upperBound - $0.lowerBound + 1 } ?? source.size)
            received = try await files.materialize(try await copyBytes(source, range: range))
            copied = true
        } else {
            try checkQuotaBeforeBody(request, bucket: bucketName, key: key, upload: id, part: number)
            received = try await receive(request, auth)
        }
        let file: String
        do { file = try files.commit(received.temporaryPath) } catch {
            unlink(received.temporaryPath)
            throw error
        }
        let etag = Self.etag(received.md5)
        let now = Timestamp.string(Date())
        let outcome: (recorded: Bool, replaced: String?)
        do { outcome = try store.putPart(upload: id, PartRecord(number: number, file: file, size: received.size, etag: etag, lastModified: now)) } catch {
            files.remove(file)
            throw error
        }
        guard outcome.recorded else {
            files.remove(file)
            throw S3Error.noSuchUpload(id)
        }
        files.remove(outcome.replaced)
        if copied {
            return S3XML.response("CopyPartResult", "<LastModified>\(S3XML.timestamp(now))</LastModified><ETag>\(S3XML.escape(etag))</ETag>")
        }
        var headers: HTTPFields = [.eTag: etag, .contentLength: "0"]
        for (algorithm, value) in Self.declaredChecksums(received, request) { headers[.init("x-amz-checksum-" + algorithm.lowercased())!] = value }
        return Response(status: .ok, headers: headers)
    }

    func completeUpload(_ bucketName: String, _ key: String, upload id: String, _ auth: Auth, _ request: Request) async throws -> Response {
        _ = try bucketRecord(bucketName, try signed(auth?.principal), .write)
        let upload = try upload(bucketName, key, id)
        let document = try await smallBody(request)
        let listed = SimpleXML.elements("Part", in: document).map { part in
            (number: SimpleXML.value("PartNumber", in: part).flatMap(Int.init) ?? 0, etag: SimpleXML.value("ETag", in: part) ?? "")
        }
        guard !listed.isEmpty else { throw S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.") }
        for (earlier, later) in zip(listed, listed.dropFirst()) where later.number <= earlier.number {
            throw S3Error("InvalidPartOrder", "The list of parts was not in ascending order. Parts must be ordered by part number.")
        }
        let stored = Dictionary(try store.parts(upload: id).map { ($0.number, $0) }, uniquingKeysWith: { first, _ in first })
        var parts: [PartRecord] = []
        for (index, wanted) in listed.enumerated() {
            guard let part = stored[wanted.number], Self.etagMatches(wanted.etag, part.etag) else {
                throw S3Error("InvalidPart", "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.")
                    .with("PartNumber", "\(wanted.number)")
            }
            if index < listed.count - 1, part.size < Self.minimumPart {
                throw S3Error("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.")
                    .with("ProposedSize", "\(part.size)").with("MinSizeAllowed", "\(Self.minimumPart)").with("PartNumber", "\(wanted.number)")
            }
            parts.append(part)
        }
        // The object is the parts' bytes in order, in one new file.
        let concatenated = try await BodyReceiver.receive(
            PartChunks(paths: parts.map { (files.path($0.file), $0.size) }), to: files.newTemporary(), chunked: nil, checksums: [], sha256: false, limit: Int64.max)
        let file: String
        do { file = try files.commit(concatenated.temporaryPath) } catch {
            unlink(concatenated.temporaryPath)
            throw error
        }
        var digests = Data()
        for part in parts { digests += Self.hexBytes(part.etag.trimmingCharacters(in: CharacterSet(charactersIn: "\""))) }
        let etag = "\"\(AWSEncoding.hex(Insecure.MD5.hash(data: digests)))-\(parts.count)\""
        var headers = upload.headers
        headers["x-amz-checksum-algorithm"] = nil
        let record = ObjectRecord(bucket: bucketName, key: key, file: file, size: concatenated.size, etag: etag, lastModified: Timestamp.string(Date()), headers: headers, checksums: [:], md5: AWSEncoding.hex(concatenated.md5), tags: upload.tags)
        let outcome: (written: Bool, files: [String])
        do { outcome = try store.finishUpload(id, object: record, condition: Self.writeCondition(request)) } catch {
            files.remove(file)
            throw error
        }
        guard outcome.written else {
            files.remove(file)
            throw S3Error.preconditionFailed
        }
        for old in outcome.files { files.remove(old) }
        return S3XML.response("CompleteMultipartUploadResult",
            "<Location>/\(S3XML.escape(bucketName))/\(S3XML.escape(key))</Location><Bucket>\(S3XML.escape(bucketName))</Bucket><Key>\(S3XML.escape(key))</Key><ETag>\(S3XML.escape(etag))</ETag>")
    }

    static func hexBytes(_ hex: String) -> Data {
        var data = Data()
        var index = hex.startIndex
        while let next = hex.index(index, offsetBy: 2, limitedBy: hex.endIndex), index < hex.endIndex {
            if let byte = UInt8(hex[index..<next], radix: 16) { data.append(byte) }
            index = next
        }
        return data
    }

    func abortUpload(_ bucketName: String, _ key: String, upload id: String, _ principal: Principal?) throws -> Response {
        _ = try bucketRecord(bucketName, try signed(principal), .write)
        _ = try upload(bucketName, key, id)
        for file in try store.finishUpload(id).files { files.remove(file) }
        return Response(status: .noContent)
    }

    func listParts(_ bucketName: String, _ key: String, upload id: String, _ call: S3Call, _ principal: Principal?) throws -> Response {
        _ = try bucketRecord(bucketName, try signed(principal), .read)
        _ = try upload(bucketName, key, id)
        let marker = call.query["part-number-marker"].flatMap(Int.init) ?? 0
        let maxParts = min(call.query["max-parts"].flatMap(Int.init) ?? 1000, 1000)
        guard maxParts >= 0 else { throw S3Error.invalidArgument("max-parts must be an integer between 0 and 2147483647") }
        let all = try store.parts(upload: id).filter { $0.number > marker }
        let page = all.prefix(maxParts)
        var body = "<Bucket>\(S3XML.escape(bucketName))</Bucket><Key>\(S3XML.escape(key))</Key><UploadId>\(id)</UploadId><PartNumberMarker>\(marker)</PartNumberMarker>"
        if let last = page.last { body += "<NextPartNumberMarker>\(last.number)</NextPartNumberMarker>" }
        body += "<MaxParts>\(maxParts)</MaxParts><IsTruncated>\(all.count > page.count)</IsTruncated><StorageClass>STANDARD</StorageClass>"
        for part in page {
            body += "<Part><PartNumber>\(part.number)</PartNumber><LastModified>\(S3XML.timestamp(part.lastModified))</LastModified><ETag>\(S3XML.escape(part.etag))</ETag><Size>\(part.size)</Size></Part>"
        }
        return S3XML.response("ListPartsResult", body)
    }

    func listUploads(_ bucketName: String, _ call: S3Call, _ principal: Principal?) throws -> Response {
        _ = try bucketRecord(bucketName, try signed(principal), .read)
        let prefix = call.query["prefix"] ?? ""
        var body = "<Bucket>\(S3XML.escape(bucketName))</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>"
        for upload in try store.uploads(bucket: bucketName) where upload.key.hasPrefix(prefix) {
            body += "<Upload><Key>\(S3XML.escape(upload.key))</Key><UploadId>\(upload.id)</UploadId><StorageClass>STANDARD</StorageClass><Initiated>\(S3XML.timestamp(upload.initiated))</Initiated></Upload>"
        }
        return S3XML.response("ListMultipartUploadsResult", body)
    }
}

/// The bytes of several files in order, as 1 MiB buffers; each must have its recorded size.
struct PartChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let paths: [(path: String, size: Int64)]

    struct AsyncIterator: AsyncIteratorProtocol {
        let paths: [(path: String, size: Int64)]
        var index = 0
        var current: FileChunks.AsyncIterator?

        mutating func next() async throws -> ByteBuffer? {
            while true {
                if current == nil {
                    guard index < paths.count else { return nil }
                    let part = paths[index]
                    index += 1
                    guard part.size > 0 else { continue }
                    current = try FileChunks(path: part.path, range: 0...(part.size - 1)).makeAsyncIterator()
                }
                if let buffer = try await current!.next() { return buffer }
                current = nil
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(paths: paths) }
}
