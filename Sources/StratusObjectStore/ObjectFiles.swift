import CStratusIO
import Crypto
import Foundation
import NIOCore
import NIOPosix

/// Where the object store keeps bytes: `DATA/objects/data/<xx>/<uuid>` for objects and parts,
/// `DATA/objects/tmp/<uuid>` while a body arrives.
///
/// Keys never become paths: a file is named by a fresh UUID and the store maps keys to files,
/// so no key (`../`, `%2e%2e/`, an absolute path, NUL) can name a file outside this directory.
/// A body is written to a temporary file, fsynced and renamed into place only when it is
/// complete and verified, and the store then points the key at it in one transaction; at start,
/// temporary files and files no record names (an upload cut off, a crash between rename and
/// commit) are removed.
struct ObjectFiles: Sendable {
    let root: String
    var data: String { root + "/data" }
    var temporary: String { root + "/tmp" }

    init(dataDirectory: String) throws {
        root = (dataDirectory as NSString).appendingPathComponent("objects")
        for directory in [root, root + "/data", root + "/tmp"] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
    }

    /// The path of a stored file (`ab/uuid`); `ObjectRecord.path` names the same.
    func path(_ file: String) -> String { data + "/" + file }

    func newTemporary() -> String { temporary + "/" + UUID().uuidString.lowercased() }

    /// A body received in memory, written to a temporary file and synced (a part, a copy).
    func materialize(_ received: ReceivedBody) async throws -> ReceivedBody {
        guard let data = received.data else { return received }
        let path = newTemporary()
        let once = AsyncStream<ByteBuffer> { continuation in
            continuation.yield(ByteBuffer(bytes: data))
            continuation.finish()
        }
        let file = try await BodyReceiver.receive(once, to: path, chunked: nil, checksums: [], sha256: false, limit: Int64.max)
        return ReceivedBody(temporaryPath: file.temporaryPath, size: received.size, md5: received.md5, sha256: received.sha256, checksums: received.checksums, trailers: received.trailers)
    }

    /// Moves a complete temporary file into place and returns its stored name.
    func commit(_ temporaryPath: String) throws -> String {
        let name = UUID().uuidString.lowercased()
        let directory = data + "/" + name.prefix(2)
        if !FileManager.default.fileExists(atPath: directory) {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        let file = "\(name.prefix(2))/\(name)"
        guard rename(temporaryPath, path(file)) == 0 else { throw S3Error("InternalError", "could not move the upload into place (errno \(errno))", status: 500) }
        return file
    }

    /// The bytes of `span` of a stored file, read at once.
    func read(_ file: String, _ span: ClosedRange<Int>) throws -> ByteBuffer {
        let descriptor = open(path(file), O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw S3Error("InternalError", "an object's file cannot be opened (errno \(errno))", status: 500) }
        defer { close(descriptor) }
        var buffer = ByteBufferAllocator().buffer(capacity: span.count)
        var offset = span.lowerBound
        while offset <= span.upperBound {
            let want = span.upperBound - offset + 1
            var result = 0
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { pointer in
                result = pread(descriptor, pointer.baseAddress, want, off_t(offset))
                return max(0, result)
            }
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else { throw S3Error("InternalError", "an object's file is shorter than recorded", status: 500) }
            let count = result
            offset += count
        }
        return buffer
    }

    func remove(_ file: String?) {
        guard let file, !file.isEmpty, !file.contains("..") else { return }
        unlink(path(file))
    }

    /// Removes temporary files and every stored file not in `keep` (run before serving).
    func sweep(keep: Set<String>) -> Int {
        var removed = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? [] {
            unlink(temporary + "/" + name)
            removed += 1
        }
        for directory in (try? FileManager.default.contentsOfDirectory(atPath: data)) ?? [] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: data + "/" + directory)) ?? [] where !keep.contains("\(directory)/\(name)") {
                unlink(data + "/" + directory + "/" + name)
                removed += 1
            }
        }
        return removed
    }
}

/// What a body turned out to be once it is on disk.
struct ReceivedBody {
    /// The temporary file, or "" for a body kept in memory (`data`).
    let temporaryPath: String
    var data: Data? = nil
    let size: Int64
    let md5: Data
    let sha256: Data?
    let checksums: [ChecksumAlgorithm: String]
    let trailers: [String: String]
}

/// Streams a request body into a temporary file, never holding it whole in memory: decoding
/// aws-chunked framing when there is some, counting, and computing MD5 (the ETag), the SHA-256
/// the client signed and the checksums it asked for. fsyncs before returning. On any failure
/// the temporary file is removed.
enum BodyReceiver {
    static let bufferSize = 1 << 20
    /// Writeback of a large body starts every this many bytes, so the final fsync waits for the
    /// tail only: receiving and writing to disk overlap instead of following each other.
    static let writebackStep = 8 << 20

    /// Threads that wait in fdatasync: many uploads sync at once (the filesystem's journal
    /// commits them together), where NIO's default pool of one thread per core would queue
    /// them. (One `syncfs` for every waiting upload measured slower: it flushes the store's
    /// WAL and every other dirty page of the filesystem too.)
    static let syncPool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 32)
        pool.start()
        return pool
    }()

    /// A body of at most `limit` bytes, kept in memory and digested as `receive` does (a small
    /// object stored in its row).
    static func receiveInMemory<Body: AsyncSequence>(
        _ body: Body, chunked: AWSChunkedDecoder?, checksums algorithms: Set<ChecksumAlgorithm>, sha256 wantSHA256: Bool, limit: Int64
    ) async throws -> ReceivedBody where Body.Element == ByteBuffer {
        var md5 = Insecure.MD5()
        var sha256 = SHA256()
        var running = algorithms.map(RunningChecksum.init)
        var data = Data()
        var decoder = chunked
        func take(_ bytes: UnsafeRawBufferPointer) throws {
            guard Int64(data.count + bytes.count) <= limit else {
                throw S3Error.incompleteBody("the body is longer than its declared length")
            }
            md5.update(bufferPointer: bytes)
            if wantSHA256 { sha256.update(bufferPointer: bytes) }
            for index in running.indices { running[index].update(bytes) }
            data.append(contentsOf: bytes)
        }
        for try await buffer in body {
            if decoder != nil { try decoder!.feed(buffer, emit: take) } else { try buffer.withUnsafeReadableBytes(take) }
        }
        try decoder?.finish()
        var sums: [ChecksumAlgorithm: String] = [:]
        for sum in running { sums[sum.algorithm] = sum.finish() }
        return ReceivedBody(
            temporaryPath: "", data: data, size: Int64(data.count), md5: Data(md5.finalize()), sha256: wantSHA256 ? Data(sha256.finalize()) : nil,
            checksums: sums, trailers: decoder?.trailers ?? [:])
    }

    static func receive<Body: AsyncSequence>(
        _ body: Body, to path: String, chunked: AWSChunkedDecoder?, checksums algorithms: Set<ChecksumAlgorithm>, sha256 wantSHA256: Bool, limit: Int64
    ) async throws -> ReceivedBody where Body.Element == ByteBuffer {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw S3Error("InternalError", "could not create a temporary file (errno \(errno))", status: 500) }
        var closed = false
        defer { if !closed { close(descriptor) } }
        do {
            var md5 = Insecure.MD5()
            var sha256 = SHA256()
            var running = algorithms.map(RunningChecksum.init)
            var size: Int64 = 0
            var pending = [UInt8]()
            pending.reserveCapacity(bufferSize)
            var decoder = chunked
            var written = 0
            var writebackFrom = 0

            func flush() throws {
                var offset = 0
                try pending.withUnsafeBytes { bytes in
                    while offset < bytes.count {
                        let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                        if written < 0 {
                            if errno == EINTR { continue }
                            throw S3Error("InternalError", "could not write the object (errno \(errno))", status: 500)
                        }
                        offset += written
                    }
                }
                written += pending.count
                pending.removeAll(keepingCapacity: true)
                if written - writebackFrom >= writebackStep {
                    _ = stratus_start_writeback(descriptor, Int64(writebackFrom), Int64(written - writebackFrom))
                    writebackFrom = written
                }
            }
            func take(_ bytes: UnsafeRawBufferPointer) throws {
                size += Int64(bytes.count)
                if size > limit { throw S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size (\(limit) bytes).") }
                md5.update(bufferPointer: bytes)
                if wantSHA256 { sha256.update(bufferPointer: bytes) }
                for index in running.indices { running[index].update(bytes) }
                pending.append(contentsOf: bytes)
                if pending.count >= bufferSize { try flush() }
            }
            for try await buffer in body {
                if decoder != nil {
                    try decoder!.feed(buffer, emit: take)
                } else {
                    try buffer.withUnsafeReadableBytes(take)
                }
            }
            try decoder?.finish()
            try flush()
            let synced = try await syncPool.runIfActive { fdatasync(descriptor) == 0 ? 0 : errno }
            guard synced == 0 else { throw S3Error("InternalError", "could not sync the object to disk (errno \(synced))", status: 500) }
            close(descriptor)
            closed = true
            var sums: [ChecksumAlgorithm: String] = [:]
            for sum in running { sums[sum.algorithm] = sum.finish() }
            return ReceivedBody(
                temporaryPath: path, size: size, md5: Data(md5.finalize()), sha256: wantSHA256 ? Data(sha256.finalize()) : nil,
                checksums: sums, trailers: decoder?.trailers ?? [:])
        } catch {
            unlink(path)
            throw error
        }
    }
}
