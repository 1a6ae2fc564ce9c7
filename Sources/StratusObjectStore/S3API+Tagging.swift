import Foundation
import HTTPTypes
import Hummingbird
import StratusIdentity
import StratusStore

/// S3 tagging's rules: at most 10 tags on an object and 50 on a bucket, keys 1–128 and values
/// 0–256 characters of letters, numbers, spaces and `+ - = . _ : / @`, unique keys, none
/// starting with `aws:`. AWS answers too many object tags
/// with `BadRequest`, too many bucket tags and every other broken tag with `InvalidTag`, all 400.
enum ObjectTags {
    static let maximumCount = 10
    static let maximumBucketCount = 50
    static let maximumKey = 128
    static let maximumValue = 256

    /// Checks a tag set as the client sent it (in order, duplicates included).
    static func validated(_ pairs: [(key: String, value: String)], bucket: Bool = false) throws -> [String: String] {
        if bucket {
            guard pairs.count <= maximumBucketCount else { throw invalid("Bucket tag count cannot be greater than \(maximumBucketCount)") }
        } else {
            guard pairs.count <= maximumCount else { throw S3Error("BadRequest", "Object tags cannot be greater than \(maximumCount)") }
        }
        var tags: [String: String] = [:]
        for (key, value) in pairs {
            guard !key.isEmpty else { throw invalid("The TagKey you have provided is invalid") }
            guard key.count <= maximumKey else { throw invalid("The TagKey you have provided is too long, max \(maximumKey)") }
            guard value.count <= maximumValue else { throw invalid("The TagValue you have provided is too long, max \(maximumValue)") }
            guard !key.lowercased().hasPrefix("aws:") else { throw invalid("Your TagKey cannot be prefixed with aws:") }
            guard key.allSatisfy(allowed) else { throw invalid("The TagKey you have provided is invalid") }
            guard value.allSatisfy(allowed) else { throw invalid("The TagValue you have provided is invalid") }
            guard tags.updateValue(value, forKey: key) == nil else { throw invalid("Cannot provide multiple Tags with the same key") }
        }
        return tags
    }

    /// `x-amz-tagging: k=v&k2=v2` (URL-encoded as a query string; `+` is a space), or nil when absent.
    static func header(_ request: Request) throws -> [String: String]? {
        guard let text = request.headers[.init("x-amz-tagging")!] else { return nil }
        return try validated(AWSEncoding.parameters(text, form: true).map { (key: $0.name, value: $0.value) })
    }

    /// A `<Tagging><TagSet><Tag><Key>…</Key><Value>…</Value></Tag>…</TagSet></Tagging>` document.
    static func document(_ text: String, bucket: Bool = false) throws -> [String: String] {
        let malformed = S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.")
        guard text.contains("<Tagging"), let set = SimpleXML.elements("TagSet", in: text).first ?? empty("TagSet", in: text) else { throw malformed }
        let pairs = try SimpleXML.elements("Tag", in: set).map { tag in
            guard let key = SimpleXML.value("Key", in: tag) ?? empty("Key", in: tag), let value = SimpleXML.value("Value", in: tag) ?? empty("Value", in: tag) else {
                throw malformed
            }
            return (key: key, value: value)
        }
        return try validated(pairs, bucket: bucket)
    }

    /// The GetObjectTagging and GetBucketTagging answer: the tag set sorted by key.
    static func response(_ tags: [String: String]) -> Response {
        let set = tags.sorted { $0.key < $1.key }.map { "<Tag>\(S3XML.element("Key", $0.key))\(S3XML.element("Value", $0.value))</Tag>" }
        return S3XML.response("Tagging", "<TagSet>\(set.joined())</TagSet>")
    }

    /// "" for an empty element written self-closing (botocore sends an empty value as `<Value />`), else nil.
    static func empty(_ name: String, in text: String) -> String? {
        text.contains("<\(name)/>") || text.contains("<\(name) />") ? "" : nil
    }

    /// What AWS allows in tag keys and values: letters, numbers and spaces (any script) and `+ - = . _ : / @`.
    static func allowed(_ character: Character) -> Bool {
        character.isLetter || character.isNumber || character == " " || "+-=._:/@".contains(character)
    }

    static func invalid(_ message: String) -> S3Error { S3Error("InvalidTag", message) }

    /// The `x-amz-tagging-count` header of a GET or HEAD: only when the object has tags, as on S3.
    static func count(_ tags: [String: String], into headers: inout HTTPFields) {
        if !tags.isEmpty { headers[.init("x-amz-tagging-count")!] = "\(tags.count)" }
    }
}

extension S3API {
    /// PutObjectTagging: replaces the object's whole tag set.
    func putObjectTagging(_ bucketName: String, _ key: String, _ principal: Principal?, _ request: Request) async throws -> Response {
        _ = try bucketRecord(bucketName, try signed(principal), .write)
        let tags = try ObjectTags.document(try await smallBody(request))
        guard try store.setObjectTags(bucket: bucketName, key: key, tags) else { throw S3Error.noSuchKey(key) }
        return Response(status: .ok, headers: [.contentLength: "0"])
    }

    /// GetObjectTagging: the tag set, sorted by key. Signed requests only (a public bucket's
    /// anonymous readers get the bytes, not the tags).
    func objectTagging(_ bucketName: String, _ key: String, _ principal: Principal?) throws -> Response {
        _ = try bucketRecord(bucketName, try signed(principal), .read)
        return ObjectTags.response(try object(bucketName, key).tags)
    }

    /// DeleteObjectTagging: removes every tag (204).
    func deleteObjectTagging(_ bucketName: String, _ key: String, _ principal: Principal?) throws -> Response {
        _ = try bucketRecord(bucketName, try signed(principal), .write)
        guard try store.setObjectTags(bucket: bucketName, key: key, [:]) else { throw S3Error.noSuchKey(key) }
        return Response(status: .noContent)
    }

    /// PutBucketTagging: replaces the bucket's whole tag set (204, as S3 answers).
    func putBucketTagging(_ bucketName: String, _ principal: Principal?, _ request: Request) async throws -> Response {
        _ = try bucketRecord(bucketName, try signed(principal), .write)
        let tags = try ObjectTags.document(try await smallBody(request), bucket: true)
        guard try store.setBucketTags(bucketName, tags) else { throw S3Error.noSuchBucket(bucketName) }
        return Response(status: .noContent)
    }

    /// GetBucketTagging: the tag set, or `NoSuchTagSet` (404) when the bucket has none, as on S3.
    func bucketTagging(_ bucketName: String, _ principal: Principal?) throws -> Response {
        _ = try bucketRecord(bucketName, try signed(principal), .read)
        guard let tags = try store.bucketTags(bucketName) else {
            throw S3Error("NoSuchTagSet", "The TagSet does not exist", status: 404)
        }
        return ObjectTags.response(tags)
    }

    /// DeleteBucketTagging: removes the tag set (204).
    func deleteBucketTagging(_ bucketName: String, _ principal: Principal?) throws -> Response {
        _ = try bucketRecord(bucketName, try signed(principal), .write)
        guard try store.setBucketTags(bucketName, nil) else { throw S3Error.noSuchBucket(bucketName) }
        return Response(status: .noContent)
    }
}
