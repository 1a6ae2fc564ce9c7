import Crypto
import Foundation
import StratusCompute

/// A node's cache of image files fetched from the object store: `DATA/images/<md5>`, shared by
/// every instance of the image. A file is copied in once, streamed, its size and MD5 checked
/// before it is renamed into place; a partial or wrong copy never becomes a cache entry.
struct ImageCache: Sendable {
    let directory: String

    init(dataDirectory: String) {
        directory = (dataDirectory as NSString).appendingPathComponent("images")
    }

    /// The local file for `location`: the cached copy of its object, or the location itself
    /// when it is a local path.
    func local(_ location: String, objects: [String: ImageObject]?) throws(NodeError) -> String {
        guard let object = objects?[location] else { return location }
        let cached = (directory as NSString).appendingPathComponent(object.md5)
        if let size = (try? FileManager.default.attributesOfItem(atPath: cached))?[.size] as? Int64, size == object.size { return cached }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try copy(object, to: cached)
        } catch let error as NodeError {
            throw error
        } catch {
            throw NodeError(.imageUnavailable, "cannot cache \(location): \(error)")
        }
        return cached
    }

    private func copy(_ object: ImageObject, to cached: String) throws {
        let source = open(object.path, O_RDONLY | O_CLOEXEC)
        guard source >= 0 else { throw NodeError(.imageUnavailable, "the object store's file \(object.path) cannot be read (errno \(errno))") }
        defer { close(source) }
        let temporary = cached + ".part-\(UUID().uuidString.prefix(8))"
        let target = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard target >= 0 else { throw NodeError(.storage, "cannot create \(temporary) (errno \(errno))") }
        var done = false
        defer {
            close(target)
            if !done { unlink(temporary) }
        }
        var md5 = Insecure.MD5()
        var size: Int64 = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw NodeError(.imageUnavailable, "reading \(object.path) failed (errno \(errno))")
            }
            if count == 0 { break }
            try buffer.withUnsafeBytes { bytes in
                let run = UnsafeRawBufferPointer(rebasing: bytes[0..<count])
                md5.update(bufferPointer: run)
                var offset = 0
                while offset < count {
                    let written = write(target, run.baseAddress! + offset, count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw NodeError(.storage, "writing the image cache failed (errno \(errno))")
                    }
                    offset += written
                }
            }
            size += Int64(count)
        }
        let digest = md5.finalize().map { String(format: "%02x", $0) }.joined()
        guard size == object.size, digest == object.md5 else {
            throw NodeError(.imageUnavailable, "the fetched image has \(size) bytes and MD5 \(digest), expected \(object.size) bytes and MD5 \(object.md5); it was not cached")
        }
        guard fsync(target) == 0, rename(temporary, cached) == 0 else { throw NodeError(.storage, "cannot move the fetched image into the cache (errno \(errno))") }
        done = true
    }
}
