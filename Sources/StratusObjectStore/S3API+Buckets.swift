import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import StratusIdentity
import StratusModel
import StratusStore

extension S3API {
    func listBuckets(_ principal: Principal?) throws -> Response {
        let principal = try signed(principal)
        let buckets = try store.buckets(project: nil).filter { principal.canRead(project: $0.project) }
        var body = "<Owner><ID>\(S3XML.escape(principal.defaultProject ?? principal.user))</ID><DisplayName>\(S3XML.escape(principal.user))</DisplayName></Owner><Buckets>"
        for bucket in buckets {
            body += "<Bucket><Name>\(S3XML.escape(bucket.name))</Name><CreationDate>\(S3XML.timestamp(bucket.createdAt))</CreationDate><BucketRegion>\(region)</BucketRegion></Bucket>"
        }
        body += "</Buckets>"
        return S3XML.response("ListAllMyBucketsResult", body)
    }

    /// What is wrong with a bucket name, by S3's rules, or nil.
    static func bucketNameProblem(_ name: String) -> String? {
        guard (3...63).contains(name.count) else { return "a bucket name has 3 to 63 characters" }
        guard name.allSatisfy({ ($0 >= "a" && $0 <= "z") || ($0 >= "0" && $0 <= "9") || $0 == "." || $0 == "-" }) else {
            return "a bucket name holds lower-case letters, digits, dots and hyphens only"
        }
        guard let first = name.first, let last = name.last, first.isLetter || first.isNumber, last.isLetter || last.isNumber else {
            return "a bucket name starts and ends with a letter or digit"
        }
        if name.contains("..") { return "a bucket name has no two adjacent dots" }
        let parts = name.split(separator: ".")
        if parts.count == 4, parts.allSatisfy({ UInt8($0) != nil }) { return "a bucket name is not an IP address" }
        if name.hasPrefix("xn--") || name.hasPrefix("sthree-") || name.hasSuffix("-s3alias") || name.hasSuffix("--ol-s3") {
            return "a bucket name does not start with xn-- or sthree-, nor end with -s3alias or --ol-s3"
        }
        return nil
    }

    func createBucket(_ name: String, _ principal: Principal?, _ request: Request) async throws -> Response {
        let principal = try signed(principal)
        if let problem = Self.bucketNameProblem(name) {
            throw S3Error("InvalidBucketName", "The specified bucket is not valid: \(problem).").with("BucketName", name)
        }
        guard let project = principal.defaultProject, principal.isCloudAdmin || principal.memberships[project] != nil else {
            throw S3Error.accessDenied("a bucket belongs to a project: use the credentials of a project's member (stratus credentials USER -p PROJECT)")
        }
        // A CreateBucketConfiguration may name a location: only this region exists.
        let configuration = try await smallBody(request)
        if let start = configuration.range(of: "<LocationConstraint>"), let end = configuration.range(of: "</LocationConstraint>"),
            start.upperBound <= end.lowerBound
        {
            let location = String(configuration[start.upperBound..<end.lowerBound])
            guard location.isEmpty || location == region else {
                throw S3Error("InvalidLocationConstraint", "The specified location-constraint is not valid: this endpoint serves \(region).")
            }
        }
        let (bucket, created) = try store.createBucket(name, project: project)
        if !created {
            if bucket.project == project { throw S3Error("BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it.", status: 409).with("BucketName", name) }
            throw S3Error("BucketAlreadyExists", "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.", status: 409).with("BucketName", name)
        }
        if request.headers[.init("x-amz-acl")!] == "public-read" { try store.setBucketPublic(name, true) }
        return Response(status: .ok, headers: [.location: "/\(name)", .contentLength: "0"])
    }

    func deleteBucket(_ name: String, _ principal: Principal?) throws -> Response {
        _ = try bucketRecord(name, try signed(principal), .write)
        switch try store.deleteBucket(name) {
        case .deleted: return Response(status: .noContent)
        case .notFound: throw S3Error.noSuchBucket(name)
        case .notEmpty: throw S3Error("BucketNotEmpty", "The bucket you tried to delete is not empty", status: 409).with("BucketName", name)
        }
    }

    /// `x-amz-acl: public-read` makes a bucket's objects readable without signing; `private` undoes it.
    func putBucketACL(_ name: String, _ principal: Principal?, _ request: Request) throws -> Response {
        _ = try bucketRecord(name, try signed(principal), .write)
        let acl = request.headers[.init("x-amz-acl")!] ?? "private"
        switch acl {
        case "public-read": try store.setBucketPublic(name, true)
        case "private": try store.setBucketPublic(name, false)
        default: throw S3Error("NotImplemented", "Only the canned ACLs private and public-read are implemented.", status: 501)
        }
        return Response(status: .ok, headers: [.contentLength: "0"])
    }

    func bucketACL(_ name: String, _ principal: Principal?) throws -> Response {
        let bucket = try bucketRecord(name, try signed(principal), .read)
        let owner = "<Owner><ID>\(S3XML.escape(bucket.project))</ID><DisplayName>\(S3XML.escape(bucket.project))</DisplayName></Owner>"
        var grants = "<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\"><ID>\(S3XML.escape(bucket.project))</ID></Grantee><Permission>FULL_CONTROL</Permission></Grant>"
        if bucket.isPublic {
            grants += "<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"Group\"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee><Permission>READ</Permission></Grant>"
        }
        return S3XML.response("AccessControlPolicy", owner + "<AccessControlList>\(grants)</AccessControlList>")
    }
}
