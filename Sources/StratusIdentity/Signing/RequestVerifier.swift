import Crypto
import Foundation
import Synchronization

/// Who signed a request, once its signature checked out.
public struct VerifiedRequest: Sendable {
    /// The access key the request was signed with.
    public let accessKey: String
    /// 2 or 4.
    public let signatureVersion: Int
    /// The SigV4 credential scope (`20261125/us-east-1/ec2/aws4_request`); nil for SigV2.
    public let scope: String?
    /// For `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` uploads: checks and strips the chunk signatures of the body.
    public let chunkedPayload: ChunkedPayload?
}

/// Verifies AWS Signature Version 2 and 4 on incoming requests (EC2 Query API, S3, the resource API).
///
/// Accepted forms: SigV4 in the `Authorization` header and as a presigned query; SigV2 as EC2
/// query parameters (HmacSHA256/HmacSHA1, boto 2 and euca2ools), in S3's `Authorization: AWS key:sig`
/// header and as an S3 presigned query (s3cmd, boto 2). Timestamps may be 15 minutes off;
/// signatures are compared in constant time.
public struct RequestVerifier: Sendable {
    /// How far a request's timestamp may be from the server's clock.
    public static let allowedSkew: TimeInterval = 15 * 60
    /// The longest validity a presigned SigV4 URL may ask for (7 days, as on AWS).
    public static let maximumExpiry = 7 * 24 * 3600

    public let service: SigningService

    public init(service: SigningService) { self.service = service }

    /// Checks the request's signature; `secret` returns the secret of an access key, or nil when there is none.
    public func verify(_ request: SignableRequest, now: Date = Date(), secret: (String) throws -> String?) throws -> VerifiedRequest {
        if let authorization = request.header("authorization") {
            if authorization.hasPrefix("AWS4-HMAC-SHA256 ") {
                return try verifyV4Header(request, authorization: authorization, now: now, secret: secret)
            }
            if authorization.hasPrefix("AWS "), service == .s3 {
                return try verifyS3V2(request, authorization: authorization, now: now, secret: secret)
            }
            throw AuthenticationError(.unsupported, "Unsupported Authorization scheme \"\(authorization.prefix(20))…\": use AWS4-HMAC-SHA256.")
        }
        let query = request.queryParameters
        if let algorithm = query.first(where: { $0.name == "X-Amz-Algorithm" })?.value {
            guard algorithm == "AWS4-HMAC-SHA256" else {
                throw AuthenticationError(.unsupported, "X-Amz-Algorithm \"\(algorithm)\" is not supported: use AWS4-HMAC-SHA256.")
            }
            return try verifyV4Query(request, parameters: query, now: now, secret: secret)
        }
        if service == .s3, query.contains(where: { $0.name == "AWSAccessKeyId" }), query.contains(where: { $0.name == "Expires" }),
            !query.contains(where: { $0.name == "SignatureVersion" })
        {
            return try verifyS3V2Query(request, parameters: query, now: now, secret: secret)
        }
        let parameters = request.method == "POST" && query.isEmpty ? request.formParameters : AWSEncoding.parameters(request.query, form: true)
        if let version = parameters.first(where: { $0.name == "SignatureVersion" })?.value {
            guard version == "2" else {
                throw AuthenticationError(.unsupported, "SignatureVersion \(version) is not supported: use 2 or Signature Version 4.")
            }
            return try verifyV2Query(request, parameters: parameters, now: now, secret: secret)
        }
        throw AuthenticationError.missing()
    }

    // MARK: - Signature Version 4

    private func verifyV4Header(_ request: SignableRequest, authorization: String, now: Date, secret: (String) throws -> String?) throws -> VerifiedRequest {
        var fields: [String: String] = [:]
        for part in authorization.dropFirst("AWS4-HMAC-SHA256 ".count).split(separator: ",") {
            let pair = AWSEncoding.trimmed(part).split(separator: "=", maxSplits: 1)
            if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
        }
        guard let credential = fields["Credential"], let signedHeaders = fields["SignedHeaders"], let signature = fields["Signature"] else {
            throw AuthenticationError.malformed("The Authorization header needs Credential=, SignedHeaders= and Signature=.")
        }
        guard let amzDate = request.header("x-amz-date") ?? request.header("date").flatMap(Self.v4Stamp(fromHTTPDate:)) else {
            throw AuthenticationError.malformed("A SigV4 request needs an X-Amz-Date (or Date) header.")
        }
        let scope = try CredentialScope(credential, requestDate: amzDate)
        let date = try Self.date(fromV4Stamp: amzDate)
        guard abs(date.timeIntervalSince(now)) <= Self.allowedSkew else {
            throw AuthenticationError(.skewed, "The request time \(amzDate) is more than 15 minutes from the server time \(Self.v4Stamp(now)); check the client's clock.")
        }
        guard let secretKey = try secret(scope.accessKey) else { throw AuthenticationError.unknownAccessKey(scope.accessKey) }
        let payload = try payloadHash(request, presigned: false)
        let key = Self.signingKey(secret: secretKey, scope: scope)
        let expected = try matchingSignature(request, signedHeaders: signedHeaders, presigned: false, payload: payload, key: key, amzDate: amzDate, scope: scope, signature: signature)
        let chunked = payload == ChunkedPayload.streamingPayload || payload == ChunkedPayload.streamingPayloadTrailer
            ? ChunkedPayload(signingKey: key, amzDate: amzDate, scope: scope.text, seedSignature: expected) : nil
        return VerifiedRequest(accessKey: scope.accessKey, signatureVersion: 4, scope: scope.text, chunkedPayload: chunked)
    }

    private func verifyV4Query(_ request: SignableRequest, parameters: [(name: String, value: String)], now: Date, secret: (String) throws -> String?) throws -> VerifiedRequest {
        func value(_ name: String) throws -> String {
            guard let value = parameters.first(where: { $0.name == name })?.value else {
                throw AuthenticationError.malformed("A presigned URL needs the \(name) parameter.")
            }
            return value
        }
        let amzDate = try value("X-Amz-Date")
        let scope = try CredentialScope(try value("X-Amz-Credential"), requestDate: amzDate)
        let signedHeaders = try value("X-Amz-SignedHeaders")
        let signature = try value("X-Amz-Signature")
        guard let expires = Int(try value("X-Amz-Expires")), (1...Self.maximumExpiry).contains(expires) else {
            throw AuthenticationError.malformed("X-Amz-Expires must be a number of seconds from 1 to \(Self.maximumExpiry).")
        }
        let date = try Self.date(fromV4Stamp: amzDate)
        if date.timeIntervalSince(now) > Self.allowedSkew {
            throw AuthenticationError(.skewed, "The presigned URL's X-Amz-Date \(amzDate) is in the future; check the client's clock.")
        }
        if now.timeIntervalSince(date) > TimeInterval(expires) {
            throw AuthenticationError(.expired, "Request has expired: the presigned URL was valid for \(expires) s from \(amzDate).")
        }
        guard let secretKey = try secret(scope.accessKey) else { throw AuthenticationError.unknownAccessKey(scope.accessKey) }
        let payload = try payloadHash(request, presigned: true)
        let key = Self.signingKey(secret: secretKey, scope: scope)
        _ = try matchingSignature(request, signedHeaders: signedHeaders, presigned: true, payload: payload, key: key, amzDate: amzDate, scope: scope, signature: signature)
        return VerifiedRequest(accessKey: scope.accessKey, signatureVersion: 4, scope: scope.text, chunkedPayload: nil)
    }

    /// The signature that matches `signature`, trying `+` in the query first as itself, then as a space (HTML-form encoders send it for spaces).
    private func matchingSignature(
        _ request: SignableRequest, signedHeaders: String, presigned: Bool, payload: String, key: SymmetricKey, amzDate: String,
        scope: CredentialScope, signature: String
    ) throws -> String {
        for plusIsSpace in request.query.contains("+") ? [false, true] : [false] {
            let query = plusIsSpace ? request.query.replacingOccurrences(of: "+", with: "%20") : request.query
            let canonical = try canonicalRequest(request, signedHeaders: signedHeaders, query: query, excludeSignature: presigned, payload: payload)
            let expected = Self.signature(key: key, stringToSign: Self.stringToSign(amzDate: amzDate, scope: scope, canonicalRequest: canonical))
            if AWSEncoding.constantTimeEqual(expected, signature.lowercased()) { return expected }
        }
        throw AuthenticationError.mismatch()
    }

    /// The payload hash the client signed: its `x-amz-content-sha256`, else the body's SHA-256 (or UNSIGNED-PAYLOAD for S3 presigned URLs).
    private func payloadHash(_ request: SignableRequest, presigned: Bool) throws -> String {
        if let declared = request.header("x-amz-content-sha256") {
            if declared.count == 64, let body = request.body, AWSEncoding.hex(SHA256.hash(data: body)) != declared.lowercased() {
                throw AuthenticationError(.payloadMismatch, "The x-amz-content-sha256 header does not match the SHA-256 of the body.")
            }
            return declared
        }
        if presigned, service == .s3 { return "UNSIGNED-PAYLOAD" }
        return AWSEncoding.hex(SHA256.hash(data: request.body ?? Data()))
    }

    /// The SigV4 canonical request.
    func canonicalRequest(_ request: SignableRequest, signedHeaders: String, query: String, excludeSignature: Bool, payload: String) throws -> String {
        let names = signedHeaders.split(separator: ";").map { $0.lowercased() }
        guard names.contains("host") else {
            throw AuthenticationError.malformed("SignedHeaders must include host.")
        }
        var headerLines = ""
        for name in names {
            let values = request.values(of: name)
            guard !values.isEmpty else { throw AuthenticationError.malformed("The signed header \"\(name)\" is not in the request.") }
            headerLines += name + ":" + values.map(Self.trimAll).joined(separator: ",") + "\n"
        }
        return [
            request.method.uppercased(),
            canonicalURI(request.path),
            Self.canonicalQuery(query, excludeSignature: excludeSignature),
            headerLines,
            names.joined(separator: ";"),
            payload,
        ].joined(separator: "\n")
    }

    /// The path as SigV4 signs it: as sent for S3; normalized and encoded once more for every other service.
    func canonicalURI(_ path: String) -> String {
        switch service {
        case .s3: return path.isEmpty ? "/" : path
        case .standard: return AWSEncoding.encode(Self.removeDotSegments(path), keepSlash: true)
        }
    }

    /// RFC 3986 dot-segment removal plus collapsed slashes, as AWS and botocore normalize paths.
    static func removeDotSegments(_ path: String) -> String {
        guard !path.isEmpty else { return "/" }
        var output: [Substring] = []
        for segment in path.split(separator: "/", omittingEmptySubsequences: true) where segment != "." {
            if segment == ".." { _ = output.popLast() } else { output.append(segment) }
        }
        let first = path.hasPrefix("/") ? "/" : ""
        let last = path.hasSuffix("/") && !output.isEmpty ? "/" : ""
        return first + output.joined(separator: "/") + last
    }

    /// Query parameters decoded, encoded again by AWS's rules and sorted by name, then value.
    static func canonicalQuery(_ query: String, excludeSignature: Bool) -> String {
        var pairs: [(String, String)] = []
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = AWSEncoding.decode(parts[0])
            if excludeSignature, name == "X-Amz-Signature" { continue }
            let value = parts.count > 1 ? AWSEncoding.decode(parts[1]) : ""
            pairs.append((AWSEncoding.encode(name), AWSEncoding.encode(value)))
        }
        pairs.sort { $0.0 != $1.0 ? $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) : $0.1.utf8.lexicographicallyPrecedes($1.1.utf8) }
        return pairs.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    /// Header value with outer whitespace removed and inner runs collapsed to one space.
    static func trimAll(_ value: String) -> String {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).joined(separator: " ")
    }

    static func stringToSign(amzDate: String, scope: CredentialScope, canonicalRequest: String) -> String {
        "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope.text)\n" + AWSEncoding.hex(SHA256.hash(data: Data(canonicalRequest.utf8)))
    }

    /// Derived signing keys by access key and scope, with the secret they came from: a key is
    /// derived once a day per client instead of four HMACs per request. A rotated secret does
    /// not match its entry and is derived afresh.
    private static let derivedKeys = Mutex<[String: (secret: String, key: SymmetricKey)]>([:])

    static func signingKey(secret: String, scope: CredentialScope) -> SymmetricKey {
        let name = "\(scope.accessKey)/\(scope.date)/\(scope.region)/\(scope.service)"
        if let known = derivedKeys.withLock({ $0[name] }), known.secret == secret { return known.key }
        let key = deriveSigningKey(secret: secret, scope: scope)
        derivedKeys.withLock { keys in
            if keys.count >= 4096 { keys.removeAll() }
            keys[name] = (secret, key)
        }
        return key
    }

    static func deriveSigningKey(secret: String, scope: CredentialScope) -> SymmetricKey {
        var key = SymmetricKey(data: Data("AWS4\(secret)".utf8))
        for part in [scope.date, scope.region, scope.service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        return key
    }

    static func signature(key: SymmetricKey, stringToSign: String) -> String {
        AWSEncoding.hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key))
    }

    // MARK: - Signature Version 2

    /// EC2-style SigV2: the parameters (query or form body) carry AWSAccessKeyId, Signature, SignatureMethod and Timestamp or Expires.
    private func verifyV2Query(_ request: SignableRequest, parameters: [(name: String, value: String)], now: Date, secret: (String) throws -> String?) throws -> VerifiedRequest {
        func value(_ name: String) -> String? { parameters.first(where: { $0.name == name })?.value }
        guard let accessKey = value("AWSAccessKeyId"), let signature = value("Signature") else {
            throw AuthenticationError.malformed("A SignatureVersion=2 request needs AWSAccessKeyId and Signature.")
        }
        let method = value("SignatureMethod") ?? "HmacSHA256"
        guard method == "HmacSHA256" || method == "HmacSHA1" else {
            throw AuthenticationError(.unsupported, "SignatureMethod \(method) is not supported: use HmacSHA256 or HmacSHA1.")
        }
        // A Timestamp must be within 15 minutes whatever Expires says; an Expires may not lie more
        // than 7 days ahead (as a SigV4 presigned URL), so a captured request cannot be replayed for years.
        let timestamp = value("Timestamp")
        let expires = value("Expires")
        guard timestamp != nil || expires != nil else { throw AuthenticationError.malformed("A SignatureVersion=2 request needs Timestamp or Expires.") }
        if let timestamp {
            guard let date = Self.date(fromISO8601: timestamp) else { throw AuthenticationError.malformed("Timestamp \"\(timestamp)\" is not an ISO 8601 time.") }
            guard abs(date.timeIntervalSince(now)) <= Self.allowedSkew else {
                throw AuthenticationError(.skewed, "The request Timestamp \(timestamp) is more than 15 minutes from the server time; check the client's clock.")
            }
        }
        if let expires {
            guard let date = Self.date(fromISO8601: expires) else { throw AuthenticationError.malformed("Expires \"\(expires)\" is not an ISO 8601 time.") }
            if now > date { throw AuthenticationError(.expired, "Request has expired: Expires was \(expires).") }
            guard date.timeIntervalSince(now) <= TimeInterval(Self.maximumExpiry) else {
                throw AuthenticationError(.unsupported, "Expires \(expires) is more than 7 days ahead; sign with a Timestamp, or an Expires at most 7 days from now.")
            }
        }
        guard let secretKey = try secret(accessKey) else { throw AuthenticationError.unknownAccessKey(accessKey) }
        let sorted = parameters.filter { $0.name != "Signature" }
            .map { (AWSEncoding.encode($0.name), AWSEncoding.encode($0.value)) }
            .sorted { $0.0 != $1.0 ? $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) : $0.1.utf8.lexicographicallyPrecedes($1.1.utf8) }
        let host = (request.header("host") ?? "").lowercased()
        let text = "\(request.method.uppercased())\n\(host)\n\(request.path)\n" + sorted.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
        let expected = method == "HmacSHA1" ? Self.hmacSHA1(secretKey, text) : Self.hmacSHA256(secretKey, text)
        guard AWSEncoding.constantTimeEqual(expected, signature) else { throw AuthenticationError.mismatch() }
        return VerifiedRequest(accessKey: accessKey, signatureVersion: 2, scope: nil, chunkedPayload: nil)
    }

    /// S3's SigV2 header: `Authorization: AWS AccessKey:Signature` over verb, MD5, type, date, amz headers and resource.
    private func verifyS3V2(_ request: SignableRequest, authorization: String, now: Date, secret: (String) throws -> String?) throws -> VerifiedRequest {
        let credential = authorization.dropFirst(4)
        guard let colon = credential.lastIndex(of: ":") else {
            throw AuthenticationError.malformed("The Authorization header must read \"AWS AccessKeyId:Signature\".")
        }
        let accessKey = AWSEncoding.trimmed(credential[..<colon])
        let signature = String(credential[credential.index(after: colon)...])
        let amzDate = request.header("x-amz-date")
        guard let dateText = amzDate ?? request.header("date") else {
            throw AuthenticationError(.malformed, "A SigV2 request needs a Date or x-amz-date header.")
        }
        guard let date = Self.date(fromHTTPDate: dateText) ?? Self.date(fromISO8601: dateText) else {
            throw AuthenticationError.malformed("The date \"\(dateText)\" is not an HTTP date.")
        }
        guard abs(date.timeIntervalSince(now)) <= Self.allowedSkew else {
            throw AuthenticationError(.skewed, "The difference between the request time and the server's time is too large (more than 15 minutes); check the client's clock.")
        }
        guard let secretKey = try secret(accessKey) else { throw AuthenticationError.unknownAccessKey(accessKey) }
        let text = s3V2StringToSign(request, dateLine: amzDate == nil ? dateText : "", queryParameters: request.queryParameters)
        guard AWSEncoding.constantTimeEqual(Self.hmacSHA1(secretKey, text), signature) else { throw AuthenticationError.mismatch() }
        return VerifiedRequest(accessKey: accessKey, signatureVersion: 2, scope: nil, chunkedPayload: nil)
    }

    /// S3's SigV2 presigned URL: AWSAccessKeyId, Expires (epoch seconds) and Signature in the query.
    private func verifyS3V2Query(_ request: SignableRequest, parameters: [(name: String, value: String)], now: Date, secret: (String) throws -> String?) throws -> VerifiedRequest {
        func value(_ name: String) -> String? { parameters.first(where: { $0.name == name })?.value }
        guard let accessKey = value("AWSAccessKeyId"), let signature = value("Signature"), let expiresText = value("Expires"), let expires = Double(expiresText) else {
            throw AuthenticationError.malformed("A presigned URL needs AWSAccessKeyId, Expires and Signature.")
        }
        if now.timeIntervalSince1970 > expires { throw AuthenticationError(.expired, "Request has expired: Expires was \(expiresText).") }
        // As for SigV4 presigned URLs: a captured URL may not be replayed for more than 7 days.
        if expires - now.timeIntervalSince1970 > Double(Self.maximumExpiry) {
            throw AuthenticationError(.unsupported, "Expires \(expiresText) is more than 7 days ahead; presign for at most 7 days (604800 seconds).")
        }
        guard let secretKey = try secret(accessKey) else { throw AuthenticationError.unknownAccessKey(accessKey) }
        let text = s3V2StringToSign(request, dateLine: expiresText, queryParameters: parameters, amzQuery: true)
        guard AWSEncoding.constantTimeEqual(Self.hmacSHA1(secretKey, text), signature) else { throw AuthenticationError.mismatch() }
        return VerifiedRequest(accessKey: accessKey, signatureVersion: 2, scope: nil, chunkedPayload: nil)
    }

    /// The sub-resources that are part of an S3 SigV2 canonical resource.
    static let s3SubResources: Set<String> = [
        "acl", "cors", "delete", "lifecycle", "location", "logging", "notification", "partNumber", "policy", "requestPayment",
        "response-cache-control", "response-content-disposition", "response-content-encoding", "response-content-language",
        "response-content-type", "response-expires", "restore", "tagging", "torrent", "uploadId", "uploads", "versionId",
        "versioning", "versions", "website",
    ]

    func s3V2StringToSign(_ request: SignableRequest, dateLine: String, queryParameters: [(name: String, value: String)], amzQuery: Bool = false) -> String {
        var amz: [String: [String]] = [:]
        for header in request.headers where header.name.lowercased().hasPrefix("x-amz-") {
            amz[header.name.lowercased(), default: []].append(AWSEncoding.trimmed(header.value))
        }
        // A presigned URL may carry x-amz-* headers as query parameters (boto 2 puts metadata
        // there); S3 signs them as headers.
        if amzQuery {
            for parameter in queryParameters where parameter.name.lowercased().hasPrefix("x-amz-") {
                amz[parameter.name.lowercased(), default: []].append(AWSEncoding.trimmed(parameter.value))
            }
        }
        var text = request.method.uppercased() + "\n"
        text += AWSEncoding.trimmed(request.header("content-md5") ?? "") + "\n"
        text += AWSEncoding.trimmed(request.header("content-type") ?? "") + "\n"
        text += dateLine + "\n"
        for name in amz.keys.sorted() { text += "\(name):\(amz[name]!.joined(separator: ","))\n" }
        text += request.path
        let sub = queryParameters.filter { Self.s3SubResources.contains($0.name) }.sorted { $0.name < $1.name }
        if !sub.isEmpty {
            text += "?" + sub.map { $0.value.isEmpty && !request.query.contains("\($0.name)=") ? $0.name : "\($0.name)=\($0.value)" }.joined(separator: "&")
        }
        return text
    }

    static func hmacSHA1(_ secret: String, _ text: String) -> String {
        Data(HMAC<Insecure.SHA1>.authenticationCode(for: Data(text.utf8), using: SymmetricKey(data: Data(secret.utf8)))).base64EncodedString()
    }

    static func hmacSHA256(_ secret: String, _ text: String) -> String {
        Data(HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: SymmetricKey(data: Data(secret.utf8)))).base64EncodedString()
    }
}
