import HTTPTypes

extension S3Call {
    /// The S3 operation this request is, as AWS names it (`GetObject`, `ListObjectsV2`): the
    /// `action` label of the request metrics, one of a bounded set whatever the client sends.
    func operation(copySource: Bool) -> String {
        guard bucket != nil else { return method == .get ? "ListBuckets" : "Unknown" }
        guard key != nil else {
            switch method {
            case .put:
                if has("acl") { return "PutBucketAcl" }
                if has("tagging") { return "PutBucketTagging" }
                return "CreateBucket"
            case .delete: return has("tagging") ? "DeleteBucketTagging" : "DeleteBucket"
            case .head: return "HeadBucket"
            case .get:
                for (parameter, name) in [("location", "GetBucketLocation"), ("acl", "GetBucketAcl"), ("tagging", "GetBucketTagging"), ("uploads", "ListMultipartUploads"), ("versioning", "GetBucketVersioning")] where has(parameter) {
                    return name
                }
                return query["list-type"] == "2" ? "ListObjectsV2" : "ListObjects"
            case .post: return has("delete") ? "DeleteObjects" : "Unknown"
            default: return "Unknown"
            }
        }
        switch method {
        case .put:
            if query["uploadId"] != nil { return copySource ? "UploadPartCopy" : "UploadPart" }
            if has("tagging") { return "PutObjectTagging" }
            return copySource ? "CopyObject" : "PutObject"
        case .get:
            if query["uploadId"] != nil { return "ListParts" }
            return has("tagging") ? "GetObjectTagging" : "GetObject"
        case .head: return "HeadObject"
        case .delete:
            if query["uploadId"] != nil { return "AbortMultipartUpload" }
            return has("tagging") ? "DeleteObjectTagging" : "DeleteObject"
        case .post:
            if has("uploads") { return "CreateMultipartUpload" }
            return query["uploadId"] != nil ? "CompleteMultipartUpload" : "Unknown"
        default: return "Unknown"
        }
    }
}
