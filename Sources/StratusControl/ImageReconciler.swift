import Foundation
import StratusIdentity
import StratusModel
import StratusNode
import StratusStore
import Synchronization

/// How nodes on other hosts reach the object store: presigned GETs of the S3 endpoint. The
/// endpoint is known once the S3 API listens (its port may be chosen then), so it is set later.
public final class RemoteObjects: Sendable {
    let signer: @Sendable () throws -> RequestSigner
    let validity: Duration
    private let base = Mutex<URL?>(nil)

    /// - Parameter signer: the controller's own key for service `s3`, read for each URL (so a
    ///   rotated key is used at once); each URL it signs lets its holder read that one object
    ///   until it expires, nothing else.
    public init(signer: @escaping @Sendable () throws -> RequestSigner, validity: Duration = .seconds(3600), endpoint: URL? = nil) {
        self.signer = signer
        self.validity = validity
        base.withLock { $0 = endpoint }
    }

    /// Sets the endpoint (`http://host:port`) unless one was configured.
    public func listening(at endpoint: URL) {
        base.withLock { if $0 == nil { $0 = endpoint } }
    }

    public var endpoint: URL? { base.withLock { $0 } }

    /// A presigned, path-style GET of `bucket/key`, or nil before the endpoint is known.
    func url(bucket: String, key: String, now: Date = Date()) throws -> String? {
        guard let endpoint, let url = URL(string: endpoint.absoluteString.trimmingSuffix("/") + "/" + AWSEncoding.encode(bucket) + "/" + AWSEncoding.encode(key, keepSlash: true)) else { return nil }
        return try signer().presignedURL(url: url, expires: validity, now: now).absoluteString
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String { hasSuffix(suffix) ? String(dropLast(suffix.count)) : self }
}

/// Finds the files of `s3://bucket/key` locations in this host's object store, or, for nodes on
/// other hosts (`remote`), presigned URLs of them.
public struct ObjectLocator: Sendable {
    let store: Store
    let dataDirectory: String
    let remote: RemoteObjects?

    public init(store: Store, dataDirectory: String, remote: RemoteObjects? = nil) {
        self.store = store
        self.dataDirectory = URL(fileURLWithPath: dataDirectory).standardizedFileURL.path
        self.remote = remote
    }

    public enum Found: Sendable, Equatable {
        /// Not an object-store location: a path on the node.
        case local
        case object(ImageObject)
        /// Why it cannot be found, in words a user can act on.
        case missing(String)
    }

    public func locate(_ location: String) throws -> Found {
        guard location.hasPrefix("s3://") else { return .local }
        let rest = location.dropFirst(5)
        guard let slash = rest.firstIndex(of: "/") else { return .missing("\(location) names no key (s3://bucket/key)") }
        let bucket = String(rest[..<slash])
        let key = String(rest[rest.index(after: slash)...])
        guard try store.bucket(bucket) != nil else {
            return .missing("bucket \(bucket) does not exist; create it and upload the file: aws --endpoint-url \"$S3_URL\" s3 mb s3://\(bucket)")
        }
        guard let object = try store.object(bucket: bucket, key: key) else {
            return .missing("\(location) does not exist yet; upload it: aws --endpoint-url \"$S3_URL\" s3 cp FILE \(location)")
        }
        guard let md5 = object.md5 else { return .missing("\(location) has no recorded checksum; upload it again") }
        guard !object.file.isEmpty else { return .missing("\(location) is \(object.size) bytes, too small to be a disk, kernel or ramdisk") }
        guard let remote else { return .object(ImageObject(path: object.path(dataDirectory: dataDirectory), size: object.size, md5: md5)) }
        guard let url = try remote.url(bucket: bucket, key: key) else { return .missing("the object store's S3 endpoint is not listening yet; \(location) is fetched from it") }
        return .object(ImageObject(path: url, size: object.size, md5: md5))
    }

    /// The objects of an image's `s3://` locations, or why one is missing (each reason once: a
    /// missing bucket is the reason of the disk, the kernel and the ramdisk alike).
    func objects(of image: ImageSpec) throws -> (objects: [String: ImageObject], missing: [String]) {
        var objects: [String: ImageObject] = [:]
        var missing: [String] = []
        for location in [image.source, image.kernel, image.ramdisk].compactMap({ $0 }) {
            switch try locate(location) {
            case .local: continue
            case .object(let object): objects[location] = object
            case .missing(let why): if !missing.contains(why) { missing.append(why) }
            }
        }
        return (objects, missing)
    }
}

/// Converges images: one whose disk, kernel or ramdisk comes from the object store is Pending
/// until each object exists, then Available with their size; a local path is taken as given
/// (it lives on the nodes, which check it when they build a disk).
public struct ImageReconciler: Reconciler {
    public let name = "image"
    public let kinds: Set<Kind> = [.image]
    public let concurrency = 4
    let locator: ObjectLocator

    public init(locator: ObjectLocator) { self.locator = locator }

    public func reconcile(_ resource: StoredResource) async -> ReconcileResult {
        guard case .image(let spec) = resource.resource.spec else {
            return .failed(reason: .wrongKind, message: "\(resource.key) is not an image", retryable: false)
        }
        var status = resource.resource.status ?? ResourceStatus()
        let now = Timestamp.string(Date())
        do {
            let (objects, missing) = try locator.objects(of: spec)
            if missing.isEmpty {
                status.phase = "Available"
                let size = objects.values.reduce(Int64(0)) { $0 + $1.size }
                status.details["size"] = objects.isEmpty ? nil : .string("\(size)")
                status.setCondition(Condition(type: .ready, status: .true, reason: .imageAvailable, message: objects.isEmpty ? "local files on the nodes" : "\(objects.count) object(s), \(size) bytes, in the object store", lastTransitionTime: now))
                return .done(status)
            }
            status.phase = "Pending"
            status.setCondition(Condition(type: .ready, status: .false, reason: .objectMissing, message: missing.joined(separator: "; "), lastTransitionTime: now))
            // Nothing announces an upload to the controller: look again soon.
            return .requeue(status, after: .seconds(2))
        } catch {
            return .failed(reason: .reconcileError, message: "\(error)", retryable: true)
        }
    }

    public func finalize(_ resource: StoredResource) async -> ReconcileResult { .done(ResourceStatus()) }
}
