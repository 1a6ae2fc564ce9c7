import Foundation
import Hummingbird
import StratusIdentity
import StratusModel
import StratusStore

extension S3API {
    /// ListObjects (v1) and ListObjectsV2 (`list-type=2`): prefix, delimiter (CommonPrefixes
    /// count towards max-keys), marker / continuation-token / start-after, encoding-type=url.
    func listObjects(_ bucketName: String, _ call: S3Call, _ principal: Principal?) throws -> Response {
        _ = try bucketRecord(bucketName, principal, .read)
        let v2 = call.query["list-type"] == "2"
        let prefix = call.query["prefix"] ?? ""
        let delimiter = call.query["delimiter"] ?? ""
        let encode = call.query["encoding-type"] == "url"
        if let type = call.query["encoding-type"], type != "url" { throw S3Error.invalidArgument("Invalid Encoding Method specified in Request") }
        let maxKeys: Int
        if let text = call.query["max-keys"] {
            guard let value = Int(text), value >= 0 else { throw S3Error.invalidArgument("Provided max-keys not an integer or within integer range") }
            maxKeys = min(value, 1000)
        } else {
            maxKeys = 1000
        }
        var start: String?
        // A page that ended on a CommonPrefix resumes after every key under it: v2's token says
        // so ("P" + prefix, else "K" + key); v1's marker is the prefix itself, ending in the delimiter.
        var skipPrefix = false
        if v2 {
            if let token = call.query["continuation-token"] {
                guard let data = Data(base64Encoded: token), let text = String(data: data, encoding: .utf8), let kind = text.first, kind == "P" || kind == "K" else {
                    throw S3Error.invalidArgument("The continuation token provided is incorrect")
                }
                start = String(text.dropFirst())
                skipPrefix = kind == "P"
            } else {
                start = call.query["start-after"]
            }
        } else {
            start = call.query["marker"]
            // Only a marker that is itself a CommonPrefix (its first delimiter after the prefix
            // ends it) stands for every key under it; a key like `a/` listed under prefix `a/` does not.
            if let marker = start, !delimiter.isEmpty, marker.hasPrefix(prefix), let found = marker.dropFirst(prefix.count).range(of: delimiter) {
                skipPrefix = found.upperBound == marker.endIndex
            }
        }

        var contents: [Store.ListedObject] = []
        var prefixes: [String] = []
        var truncated = false
        var last: String?
        var cursor = start
        var inclusive = false
        if skipPrefix, let common = start {
            guard let next = Store.successor(of: common) else { return try listResponse(bucketName, call, v2: v2, prefix: prefix, delimiter: delimiter, encode: encode, maxKeys: maxKeys, contents: [], prefixes: [], truncated: false, last: nil, lastIsPrefix: false) }
            cursor = next
            inclusive = true
        }
        var lastIsPrefix = false
        scan: while maxKeys > 0 {
            let batch = try store.listing(bucket: bucketName, prefix: prefix, start: cursor, inclusive: inclusive, limit: min(1000, maxKeys + 1))
            if batch.isEmpty { break }
            inclusive = false
            for object in batch {
                cursor = object.key
                if !delimiter.isEmpty, let range = object.key.dropFirst(prefix.count).range(of: delimiter) {
                    let common = String(object.key[..<range.upperBound])
                    if prefixes.last == common { continue }
                    if contents.count + prefixes.count == maxKeys {
                        truncated = true
                        break scan
                    }
                    prefixes.append(common)
                    last = common
                    lastIsPrefix = true
                    // Skip every other key under this prefix.
                    guard let next = Store.successor(of: common) else { break scan }
                    cursor = next
                    inclusive = true
                    continue scan
                }
                if contents.count + prefixes.count == maxKeys {
                    truncated = true
                    break scan
                }
                contents.append(object)
                last = object.key
                lastIsPrefix = false
            }
            if batch.count < min(1000, maxKeys + 1) { break }
        }
        return try listResponse(bucketName, call, v2: v2, prefix: prefix, delimiter: delimiter, encode: encode, maxKeys: maxKeys, contents: contents, prefixes: prefixes, truncated: truncated, last: last, lastIsPrefix: lastIsPrefix)
    }

    private func listResponse(
        _ bucketName: String, _ call: S3Call, v2: Bool, prefix: String, delimiter: String, encode: Bool, maxKeys: Int,
        contents: [Store.ListedObject], prefixes: [String], truncated: Bool, last: String?, lastIsPrefix: Bool
    ) throws -> Response {
        func name(_ text: String) -> String { S3XML.escape(encode ? AWSEncoding.encode(text, keepSlash: true) : text) }
        var body = "<Name>\(S3XML.escape(bucketName))</Name><Prefix>\(name(prefix))</Prefix>"
        if v2 {
            body += "<KeyCount>\(contents.count + prefixes.count)</KeyCount>"
            if let token = call.query["continuation-token"] { body += "<ContinuationToken>\(S3XML.escape(token))</ContinuationToken>" }
            if let after = call.query["start-after"] { body += "<StartAfter>\(name(after))</StartAfter>" }
        } else {
            body += "<Marker>\(name(call.query["marker"] ?? ""))</Marker>"
        }
        body += "<MaxKeys>\(maxKeys)</MaxKeys>"
        if !delimiter.isEmpty { body += "<Delimiter>\(name(delimiter))</Delimiter>" }
        if encode { body += "<EncodingType>url</EncodingType>" }
        body += "<IsTruncated>\(truncated)</IsTruncated>"
        if truncated, let last {
            body += v2 ? "<NextContinuationToken>\(Data(((lastIsPrefix ? "P" : "K") + last).utf8).base64EncodedString())</NextContinuationToken>" : "<NextMarker>\(name(last))</NextMarker>"
        }
        let fetchOwner = !v2 || call.query["fetch-owner"] == "true"
        for object in contents {
            body += "<Contents><Key>\(name(object.key))</Key><LastModified>\(S3XML.timestamp(object.lastModified))</LastModified><ETag>\(S3XML.escape(object.etag))</ETag><Size>\(object.size)</Size>"
            if fetchOwner { body += "<Owner><ID>\(S3XML.escape(bucketName))</ID><DisplayName>\(S3XML.escape(bucketName))</DisplayName></Owner>" }
            body += "<StorageClass>STANDARD</StorageClass></Contents>"
        }
        for common in prefixes { body += "<CommonPrefixes><Prefix>\(name(common))</Prefix></CommonPrefixes>" }
        return S3XML.response("ListBucketResult", body)
    }
}
