import Foundation
import Testing

@testable import StratusIdentity

/// The published AWS SigV4 test-suite vectors (aws-sig-v4-test-suite, 2015-08-30) and S3 examples.
@Suite struct SigningVectorTests {
    static let suiteSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    static let suiteNow = Date(timeIntervalSince1970: 1_440_938_160)  // 2015-08-30T12:36:00Z
    static let s3Secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    static let s3Now = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z

    func suiteRequest(_ method: String, _ path: String, query: String = "", headers: [(String, String)] = [], body: String = "", signed: String = "host;x-amz-date", signature: String) -> SignableRequest {
        let all = [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")] + headers + [
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=\(signed), Signature=\(signature)")
        ]
        return SignableRequest(method: method, path: path, query: query, headers: all.map { (name: $0.0, value: $0.1) }, body: Data(body.utf8))
    }

    func verify(_ request: SignableRequest, service: SigningService = .standard, now: Date = Self.suiteNow, secret: String = Self.suiteSecret) throws -> VerifiedRequest {
        try RequestVerifier(service: service).verify(request, now: now) { $0.hasPrefix("AK") ? secret : nil }
    }

    @Test("get-vanilla verifies, and a changed signature does not")
    func getVanilla() throws {
        let good = suiteRequest("GET", "/", signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        #expect(try verify(good).accessKey == "AKIDEXAMPLE")
        let bad = suiteRequest("GET", "/", signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf32")
        #expect(throws: AuthenticationError.self) { try verify(bad) }
    }

    @Test("get-vanilla-query-order-key-case sorts the query by name")
    func queryOrder() throws {
        let request = suiteRequest("GET", "/", query: "Param2=value2&Param1=value1", signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")
        #expect(try verify(request).signatureVersion == 4)
    }

    @Test("post-x-www-form-urlencoded signs the content type and the body")
    func formBody() throws {
        let request = suiteRequest(
            "POST", "/", headers: [("Content-Type", "application/x-www-form-urlencoded")], body: "Param1=value1",
            signed: "content-type;host;x-amz-date", signature: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
        )
        _ = try verify(request)
        var tampered = request
        tampered.body = Data("Param1=value2".utf8)
        #expect(throws: AuthenticationError.self) { try verify(tampered) }
    }

    @Test("get-header-key-duplicate joins repeated headers in arrival order")
    func duplicateHeaders() throws {
        let request = suiteRequest(
            "GET", "/", headers: [("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1")],
            signed: "host;my-header1;x-amz-date", signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"
        )
        _ = try verify(request)
    }

    @Test("the S3 GET Object example signs a Range header and the empty payload hash")
    func s3GetObject() throws {
        let request = SignableRequest(method: "GET", path: "/test.txt", headers: [
            ("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9"),
            ("x-amz-content-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            ("x-amz-date", "20130524T000000Z"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
        ].map { (name: $0.0, value: $0.1) })
        _ = try verify(request, service: .s3, now: Self.s3Now, secret: Self.s3Secret)
    }

    @Test("the S3 chunked upload example verifies its seed and every chunk signature")
    func chunkedUpload() throws {
        let request = SignableRequest(method: "PUT", path: "/examplebucket/chunkObject.txt", headers: [
            ("Host", "s3.amazonaws.com"), ("x-amz-date", "20130524T000000Z"), ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"), ("Content-Encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "66560"), ("Content-Length", "66824"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"),
        ].map { (name: $0.0, value: $0.1) })
        let verified = try verify(request, service: .s3, now: Self.s3Now, secret: Self.s3Secret)
        let chunked = try #require(verified.chunkedPayload)
        func body(_ signatures: [String]) -> Data {
            var data = Data("10000;chunk-signature=\(signatures[0])\r\n".utf8) + Data(repeating: UInt8(ascii: "a"), count: 65536)
            data += Data("\r\n400;chunk-signature=\(signatures[1])\r\n".utf8) + Data(repeating: UInt8(ascii: "a"), count: 1024)
            data += Data("\r\n0;chunk-signature=\(signatures[2])\r\n\r\n".utf8)
            return data
        }
        let signatures = [
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
        ]
        #expect(body(signatures).count == 66824)
        #expect(try chunked.decode(body(signatures)) == Data(repeating: UInt8(ascii: "a"), count: 66560))
        for index in 0..<3 {
            var wrong = signatures
            wrong[index] = String(wrong[index].reversed())
            #expect(throws: AuthenticationError.self) { try chunked.decode(body(wrong)) }
        }
    }

    @Test("a timestamp more than 15 minutes off is refused as RequestExpired, 14 minutes is accepted")
    func clockSkew() throws {
        let request = suiteRequest("GET", "/", signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        _ = try verify(request, now: Self.suiteNow.addingTimeInterval(14 * 60))
        do {
            _ = try verify(request, now: Self.suiteNow.addingTimeInterval(16 * 60))
            Issue.record("a skewed request was accepted")
        } catch let error as AuthenticationError {
            #expect(error.ec2Code == "RequestExpired")
            #expect(error.s3Code == "RequestTimeTooSkewed")
        }
    }

    @Test("an unknown access key, a missing signature and a malformed credential get their own codes")
    func errorCodes() {
        func code(_ request: SignableRequest) -> String? {
            do { _ = try RequestVerifier(service: .standard).verify(request, now: Self.suiteNow) { _ in nil }; return nil } catch let error as AuthenticationError { return error.ec2Code } catch { return "\(error)" }
        }
        #expect(code(suiteRequest("GET", "/", signature: "00")) == "AuthFailure")
        #expect(code(SignableRequest(method: "GET", path: "/", headers: [("Host", "x")])) == "MissingAuthenticationToken")
        var malformed = suiteRequest("GET", "/", signature: "00")
        malformed.headers.removeLast()
        malformed.headers.append(("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/2015/us-east-1, SignedHeaders=host, Signature=00"))
        #expect(code(malformed) == "IncompleteSignature")
    }

    @Test("the signer's own requests verify, and the path is normalized as AWS does")
    func signerRoundTrip() throws {
        let signer = RequestSigner(accessKey: "AKIDLOCAL", secretKey: "s3cr3t/+key")
        let url = URL(string: "http://127.0.0.1:8774/v1/resources?kind=instance&project=a%20b")!
        let headers = signer.headers(method: "GET", url: url, body: Data())
        let request = SignableRequest(method: "GET", path: "/v1/resources", query: "kind=instance&project=a%20b", headers: headers + [("Host", "127.0.0.1:8774")])
        #expect(try RequestVerifier(service: .standard).verify(request) { $0 == "AKIDLOCAL" ? "s3cr3t/+key" : nil }.accessKey == "AKIDLOCAL")
        #expect(RequestVerifier.removeDotSegments("//example//a/./b/../c/") == "/example/a/c/")
        #expect(AWSEncoding.encode("ሴ a/b", keepSlash: true) == "%E1%88%B4%20a/b")
    }
}

/// EC2 SigV2's time bounds: a captured request cannot be replayed beyond them.
@Suite struct SigV2TimeBoundTests {
    static let secret = "sigv2-secret"
    static let now = Date(timeIntervalSince1970: 1_764_590_400)  // 2025-12-01T12:00:00Z

    /// A form POST signed with SigV2 (HmacSHA256) carrying `times` (Timestamp and/or Expires).
    static func request(_ times: [(String, String)]) -> SignableRequest {
        var parameters = [("AWSAccessKeyId", "AKSIGV2"), ("Action", "DescribeRegions"), ("SignatureMethod", "HmacSHA256"), ("SignatureVersion", "2"), ("Version", "2016-11-15")] + times
        let sorted = parameters.map { (AWSEncoding.encode($0.0), AWSEncoding.encode($0.1)) }.sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
        let text = "POST\nlocalhost:8773\n/\n" + sorted.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
        parameters.append(("Signature", RequestVerifier.hmacSHA256(secret, text)))
        let body = parameters.map { "\(AWSEncoding.encode($0.0))=\(AWSEncoding.encode($0.1))" }.joined(separator: "&")
        return SignableRequest(method: "POST", path: "/", query: "", headers: [(name: "host", value: "localhost:8773"), (name: "content-type", value: "application/x-www-form-urlencoded")], body: Data(body.utf8))
    }

    static func verify(_ times: [(String, String)]) throws -> VerifiedRequest {
        try RequestVerifier(service: .standard).verify(request(times), now: now) { $0 == "AKSIGV2" ? secret : nil }
    }

    @Test("a Timestamp within 15 minutes, or an Expires within 7 days, verifies")
    func accepted() throws {
        #expect(try Self.verify([("Timestamp", "2025-12-01T12:05:00Z")]).signatureVersion == 2)
        #expect(try Self.verify([("Expires", "2025-12-07T12:00:00Z")]).signatureVersion == 2)
    }

    @Test("an Expires years ahead is refused, and a stale Timestamp is refused whatever Expires says")
    func refused() throws {
        let far = try #require(throws: AuthenticationError.self) { try Self.verify([("Expires", "2100-01-01T00:00:00Z")]) }
        #expect(far.message.contains("more than 7 days ahead"))
        let stale = try #require(throws: AuthenticationError.self) { try Self.verify([("Timestamp", "2025-12-01T10:00:00Z"), ("Expires", "2025-12-02T00:00:00Z")]) }
        #expect(stale.ec2Code == "RequestExpired")
        #expect(throws: AuthenticationError.self) { try Self.verify([("Expires", "2025-12-01T11:00:00Z")]) }
    }

    /// An S3 SigV2 presigned GET of /bucket/key that expires at `expires` (epoch seconds).
    static func presigned(expires: Int) throws -> VerifiedRequest {
        let signature = RequestVerifier.hmacSHA1(secret, "GET\n\n\n\(expires)\n/bucket/key")
        let query = "AWSAccessKeyId=AKSIGV2&Expires=\(expires)&Signature=\(AWSEncoding.encode(signature))"
        let request = SignableRequest(method: "GET", path: "/bucket/key", query: query, headers: [(name: "host", value: "localhost:3333")], body: Data())
        return try RequestVerifier(service: .s3).verify(request, now: now) { $0 == "AKSIGV2" ? secret : nil }
    }

    @Test("an S3 presigned URL (SigV2) verifies within 7 days and is refused beyond")
    func presignedBound() throws {
        let nowSeconds = Int(Self.now.timeIntervalSince1970)
        #expect(try Self.presigned(expires: nowSeconds + 3600).signatureVersion == 2)
        #expect(try Self.presigned(expires: nowSeconds + 7 * 24 * 3600).signatureVersion == 2)
        let far = try #require(throws: AuthenticationError.self) { try Self.presigned(expires: 4_102_444_800) }  // 2100
        #expect(far.message.contains("more than 7 days ahead"), "\(far.message)")
    }

    @Test("a SigV4 presigned URL (RequestSigner.presignedURL) verifies as sent by an HTTP client: keys with spaces, dots and non-ASCII, a default port left out of Host, an IPv6 host in brackets; expired or altered it is refused")
    func presignedV4() throws {
        let signer = RequestSigner(accessKey: "AKSIGV4", secretKey: Self.secret, region: "nova", service: "s3")
        func verify(_ url: URL, host: String, at: Date = Self.now) throws -> VerifiedRequest {
            let components = try #require(URLComponents(url: url, resolvingAgainstBaseURL: false))
            let request = SignableRequest(method: "GET", path: components.percentEncodedPath, query: components.percentEncodedQuery ?? "", headers: [(name: "host", value: host)], body: Data())
            return try RequestVerifier(service: .s3).verify(request, now: at) { $0 == "AKSIGV4" ? Self.secret : nil }
        }
        let cases: [(String, String)] = [
            ("http://127.0.0.1:3333/images/" + AWSEncoding.encode("dir/./a blob é.raw", keepSlash: true), "127.0.0.1:3333"),
            ("http://controller/images/disk.raw", "controller"),
            ("http://controller:80/images/disk.raw", "controller"),
            ("https://controller:443/images/disk.raw", "controller"),
            ("http://[::1]:3333/images/disk.raw", "[::1]:3333"),
        ]
        for (text, host) in cases {
            let url = signer.presignedURL(url: try #require(URL(string: text)), expires: .seconds(3600), now: Self.now)
            #expect(throws: Never.self, "\(text)") { _ = try verify(url, host: host) }
            #expect(throws: AuthenticationError.self, "\(text) two hours later") { _ = try verify(url, host: host, at: Self.now.addingTimeInterval(7200)) }
            let altered = try #require(URL(string: url.absoluteString.replacingOccurrences(of: "/images/", with: "/other/")))
            #expect(throws: AuthenticationError.self, "\(text) for another bucket") { _ = try verify(altered, host: host) }
        }
    }
}
