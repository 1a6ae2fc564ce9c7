import Crypto
import Foundation
import Logging
import StratusCompute

/// A node's cache of image files fetched from the object store: `DATA/images/<md5>`, shared by
/// every instance of the image. A file is copied in once, streamed, its size and MD5 checked
/// before it is renamed into place; a partial or wrong copy never becomes a cache entry.
///
/// An object on this host is read from its file; a node on another host gets a presigned URL of
/// the controller's S3 API instead, fetched with curl (the URL goes in a private config file,
/// never on a command line other users can read, and never into a log or an error).
struct ImageCache: Sendable {
    let directory: String
    let logger: Logger

    init(dataDirectory: String, logger: Logger = Logger(label: "stratus.node.images")) {
        directory = (dataDirectory as NSString).appendingPathComponent("images")
        self.logger = logger
    }

    /// The local file for `location`: the cached copy of its object, or the location itself
    /// when it is a local path.
    func local(_ location: String, objects: [String: ImageObject]?) throws(NodeError) -> String {
        guard let object = objects?[location] else { return location }
        let cached = (directory as NSString).appendingPathComponent(object.md5)
        if let size = (try? FileManager.default.attributesOfItem(atPath: cached))?[.size] as? Int64, size == object.size { return cached }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            if Self.isURL(object.path) { try fetch(object, to: cached) } else { try copy(object, to: cached) }
        } catch let error as NodeError {
            throw error
        } catch {
            throw NodeError(.imageUnavailable, "cannot cache \(location): \(error)")
        }
        return cached
    }

    /// Every object of an image in the cache (fetched if missing), so later lookups are at once.
    func prefetch(_ objects: [String: ImageObject]) throws(NodeError) {
        for location in objects.keys.sorted() { _ = try local(location, objects: objects) }
    }

    static func isURL(_ path: String) -> Bool { path.hasPrefix("http://") || path.hasPrefix("https://") }

    /// A URL as it may be shown: without its query, which holds the signature.
    static func redacted(_ url: String) -> String { String(url.prefix { $0 != "?" }) }

    static let curl = ["/usr/bin/curl", "/bin/curl"].first { FileManager.default.isExecutableFile(atPath: $0) }

    private func fetch(_ object: ImageObject, to cached: String) throws {
        let shown = Self.redacted(object.path)
        guard let curl = Self.curl else { throw NodeError(.imageUnavailable, "cannot fetch \(shown): curl is not installed on this node (apt-get install curl)") }
        let suffix = UUID().uuidString.prefix(8)
        let temporary = cached + ".part-\(suffix)"
        let config = cached + ".curl-\(suffix)"
        defer { unlink(config) }
        var done = false
        defer { if !done { unlink(temporary) } }
        let quoted = object.path.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        // path-as-is: the path is requested exactly as it was signed (no dot segments squashed).
        guard FileManager.default.createFile(atPath: config, contents: Data("url = \"\(quoted)\"\npath-as-is\n".utf8), attributes: [.posixPermissions: 0o600]) else {
            throw NodeError(.storage, "cannot write \(config)")
        }
        // -q first: no ~/.curlrc (a --verbose there would print the signed request line). A
        // transfer under 1 KiB/s for a minute is given up instead of holding the call forever.
        let result = try ChildProcess.run(curl, ["-q", "--silent", "--show-error", "--fail", "--connect-timeout", "10", "--speed-limit", "1024", "--speed-time", "60",
                                                 "--retry", "2", "--config", config, "--output", temporary])
        guard result.status == 0 else {
            let why = result.errors.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: object.path, with: shown)
            throw NodeError(.imageUnavailable, "fetching \(shown) from the object store failed (curl exit \(result.status)): \(why)")
        }
        let (size, digest) = try Self.measure(temporary)
        guard size == object.size, digest == object.md5 else {
            throw NodeError(.imageUnavailable, "the fetched image has \(size) bytes and MD5 \(digest), expected \(object.size) bytes and MD5 \(object.md5); it was not cached")
        }
        let descriptor = open(temporary, O_RDONLY | O_CLOEXEC)
        defer { if descriptor >= 0 { close(descriptor) } }
        guard descriptor >= 0, fsync(descriptor) == 0, rename(temporary, cached) == 0 else { throw NodeError(.storage, "cannot move the fetched image into the cache (errno \(errno))") }
        done = true
        logger.info("image object fetched into the cache", metadata: ["stratus.object": "\(shown)", "stratus.bytes": "\(size)", "stratus.md5": "\(digest)"])
    }

    /// The size and hex MD5 of a file.
    static func measure(_ path: String) throws -> (Int64, String) {
        let source = open(path, O_RDONLY | O_CLOEXEC)
        guard source >= 0 else { throw NodeError(.storage, "cannot read \(path) (errno \(errno))") }
        defer { close(source) }
        return try digest(of: source, path: path) { _ in }
    }

    /// Reads `source` to its end in 1 MiB runs, handing each to `each`: its size and hex MD5.
    static func digest(of source: Int32, path: String, _ each: (UnsafeRawBufferPointer) throws -> Void) throws -> (Int64, String) {
        var md5 = Insecure.MD5()
        var size: Int64 = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw NodeError(.imageUnavailable, "reading \(path) failed (errno \(errno))")
            }
            if count == 0 { break }
            try buffer.withUnsafeBytes { bytes in
                let run = UnsafeRawBufferPointer(rebasing: bytes[0..<count])
                md5.update(bufferPointer: run)
                try each(run)
            }
            size += Int64(count)
        }
        return (size, md5.finalize().map { String(format: "%02x", $0) }.joined())
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
        let (size, digest) = try Self.digest(of: source, path: object.path) { run in
            var offset = 0
            while offset < run.count {
                let written = write(target, run.baseAddress! + offset, run.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw NodeError(.storage, "writing the image cache failed (errno \(errno))")
                }
                offset += written
            }
        }
        guard size == object.size, digest == object.md5 else {
            throw NodeError(.imageUnavailable, "the fetched image has \(size) bytes and MD5 \(digest), expected \(object.size) bytes and MD5 \(object.md5); it was not cached")
        }
        guard fsync(target) == 0, rename(temporary, cached) == 0 else { throw NodeError(.storage, "cannot move the fetched image into the cache (errno \(errno))") }
        done = true
    }
}
