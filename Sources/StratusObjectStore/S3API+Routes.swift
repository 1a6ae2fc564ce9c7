import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import StratusIdentity
import StratusModel
import StratusStore

extension S3API {
    typealias Auth = (principal: Principal, verified: VerifiedRequest)?

    /// Dispatches on method, bucket, key and sub-resource, as S3 does.
    func route(_ call: S3Call, principal auth: Auth, request: Request, context: S3RequestContext) async throws -> Response {
        let principal = auth?.principal
        guard let bucket = call.bucket else {
            guard call.method == .get else { throw S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.", status: 405) }
            return try listBuckets(principal)
        }
        guard let key = call.key else {
            switch call.method {
            case .put:
                if call.has("acl") { return try putBucketACL(bucket, principal, request) }
                if call.has("tagging") { return try await putBucketTagging(bucket, principal, request) }
                if call.has("policy") || call.has("versioning") || call.has("cors") || call.has("lifecycle") {
                    throw S3Error("NotImplemented", "This bucket sub-resource is not implemented.", status: 501)
                }
                return try await createBucket(bucket, principal, request)
            case .delete:
                if call.has("tagging") { return try deleteBucketTagging(bucket, principal) }
                return try deleteBucket(bucket, principal)
            case .head:
                _ = try bucketRecord(bucket, principal, .read)
                return Response(status: .ok, headers: [.init("x-amz-bucket-region")!: region, .contentLength: "0"])
            case .get:
                if call.has("location") {
                    _ = try bucketRecord(bucket, principal, .read)
                    return S3XML.response("LocationConstraint", S3XML.escape(region))
                }
                if call.has("acl") { return try bucketACL(bucket, principal) }
                if call.has("tagging") { return try bucketTagging(bucket, principal) }
                if call.has("uploads") { return try listUploads(bucket, call, principal) }
                if call.has("versioning") {
                    _ = try bucketRecord(bucket, principal, .read)
                    return S3XML.response("VersioningConfiguration", "")
                }
                return try listObjects(bucket, call, principal)
            case .post:
                if call.has("delete") { return try await deleteObjects(bucket, principal, request) }
                throw S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.", status: 405)
            default:
                throw S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.", status: 405)
            }
        }
        switch call.method {
        case .put:
            if let upload = call.query["uploadId"] {
                return try await uploadPart(bucket, key, upload: upload, call, auth, request, context)
            }
            if call.has("tagging") { return try await putObjectTagging(bucket, key, principal, request) }
            if call.has("acl") { throw S3Error("NotImplemented", "This object sub-resource is not implemented.", status: 501) }
            if request.headers[.init("x-amz-copy-source")!] != nil { return try await copyObject(bucket, key, auth, request) }
            return try await putObject(bucket, key, auth, request, context)
        case .get:
            if let upload = call.query["uploadId"] { return try listParts(bucket, key, upload: upload, call, principal) }
            if call.has("tagging") { return try objectTagging(bucket, key, principal) }
            return try await getObject(bucket, key, call, principal, request, context, head: false)
        case .head:
            return try await getObject(bucket, key, call, principal, request, context, head: true)
        case .delete:
            if let upload = call.query["uploadId"] { return try abortUpload(bucket, key, upload: upload, principal) }
            if call.has("tagging") { return try deleteObjectTagging(bucket, key, principal) }
            return try deleteObject(bucket, key, principal)
        case .post:
            if call.has("uploads") { return try createUpload(bucket, key, principal, request) }
            if let upload = call.query["uploadId"] { return try await completeUpload(bucket, key, upload: upload, auth, request) }
            throw S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.", status: 405)
        default:
            throw S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.", status: 405)
        }
    }

    enum Access { case read, write }

    /// The bucket, if the caller may read (or write) it: members of its project, cloudadmin and
    /// itsec for reads; anonymous callers read public buckets only.
    func bucketRecord(_ name: String, _ principal: Principal?, _ access: Access) throws -> BucketRecord {
        guard let bucket = try store.bucket(name) else { throw S3Error.noSuchBucket(name) }
        try authorize(bucket, principal, access)
        return bucket
    }

    func authorize(_ bucket: BucketRecord, _ principal: Principal?, _ access: Access) throws {
        let name = bucket.name
        if let principal {
            let allowed = access == .read ? principal.canRead(project: bucket.project) : principal.isCloudAdmin || principal.memberships[bucket.project] != nil
            guard allowed else { throw S3Error.accessDenied("bucket \(name) belongs to a project you are not a member of") }
        } else {
            guard access == .read, bucket.isPublic else {
                throw S3Error.accessDenied("anonymous requests may only read public buckets; sign the request")
            }
        }
    }

    func signed(_ principal: Principal?) throws -> Principal {
        guard let principal else { throw S3Error.accessDenied("sign the request (anonymous requests may only read public buckets)") }
        return principal
    }

    /// Reads a small XML request body (DeleteObjects, CompleteMultipartUpload: at most 1 MiB).
    func smallBody(_ request: Request) async throws -> String {
        var request = request
        do {
            let buffer = try await request.collectBody(upTo: 1 << 20)
            return String(buffer: buffer)
        } catch is NIOTooManyBytesError {
            throw S3Error("MaxMessageLengthExceeded", "Your request was too big (at most 1 MiB).")
        }
    }
}
