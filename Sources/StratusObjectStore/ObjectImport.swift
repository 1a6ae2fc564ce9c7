import Crypto
import Foundation
import StratusIdentity
import StratusModel
import StratusStore

/// Puts a file of this host into the object store as an object, on the data directory itself,
/// with no S3 request: how `stratus image build-tiny --upload` gives `make run`'s examples their
/// image before `serve` starts. The same rules as a PutObject hold: the bucket is validated and
/// belongs to one project, the bytes are copied to a temporary file, synced and renamed into
/// place, and the store records the object (and the project's quota) in one transaction.
public enum ObjectImport {
    public enum Outcome: Sendable, Equatable {
        /// The object now holds the file's bytes.
        case stored(size: Int64, md5: String)
        /// The object already held exactly these bytes (same size and MD5): nothing was written.
        case unchanged(size: Int64, md5: String)
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Stores `path` as `key` in `bucket`, creating the bucket for `project` when it does not exist.
    public static func put(file path: String, bucket: String, key: String, project: String, store: Store, dataDirectory: String) throws -> Outcome {
        if let problem = S3API.bucketNameProblem(bucket) { throw Failure(description: "bucket \(bucket): \(problem)") }
        guard !key.isEmpty, key.utf8.count <= 1024 else { throw Failure(description: "an object key is 1 to 1,024 bytes, got \(key.utf8.count)") }
        let (record, _) = try store.createBucket(bucket, project: project)
        guard record.project == project else {
            throw Failure(description: "bucket \(bucket) belongs to project \(record.project), not \(project); choose another bucket name or -p \(record.project)")
        }
        let (size, md5) = try digest(path)
        if let existing = try store.object(bucket: bucket, key: key), existing.size == size, existing.md5 == md5 {
            return .unchanged(size: size, md5: md5)
        }
        let files = try ObjectFiles(dataDirectory: dataDirectory)
        let temporary = files.newTemporary()
        do { try copy(path, to: temporary, size: size) } catch {
            unlink(temporary)
            throw error
        }
        let stored: String
        do { stored = try files.commit(temporary) } catch {
            unlink(temporary)
            throw error
        }
        let object = ObjectRecord(
            bucket: bucket, key: key, file: stored, size: size, etag: "\"\(md5)\"", lastModified: Timestamp.string(Date()),
            headers: ["content-type": "application/octet-stream"], checksums: [:], md5: md5)
        do {
            let outcome = try store.putObject(object)
            files.remove(outcome.replaced)
        } catch {
            files.remove(stored)
            throw error
        }
        return .stored(size: size, md5: md5)
    }

    /// The file's size and MD5 (lower-case hex), read in 1 MiB pieces.
    static func digest(_ path: String) throws -> (Int64, String) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw Failure(description: "cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { try? handle.close() }
        var hasher = Insecure.MD5()
        var size: Int64 = 0
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
            size += Int64(chunk.count)
        }
        return (size, AWSEncoding.hex(Data(hasher.finalize())))
    }

    /// Copies `size` bytes of `source` to `target` (mode 0600) and syncs them; fails if the file changed size meanwhile.
    static func copy(_ source: String, to target: String, size: Int64) throws {
        guard let input = FileHandle(forReadingAtPath: source) else { throw Failure(description: "cannot read \(source): \(String(cString: strerror(errno)))") }
        defer { try? input.close() }
        let descriptor = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw Failure(description: "cannot create \(target): \(String(cString: strerror(errno)))") }
        let output = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        var copied: Int64 = 0
        while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty {
            try output.write(contentsOf: chunk)
            copied += Int64(chunk.count)
        }
        guard copied == size else { throw Failure(description: "\(source) changed while it was copied (\(size) bytes, then \(copied))") }
        guard fsync(descriptor) == 0 else { throw Failure(description: "cannot sync \(target): \(String(cString: strerror(errno)))") }
    }
}
