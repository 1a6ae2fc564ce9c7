import Crypto
import Foundation

/// Signs outgoing requests with SigV4 (the CLI's `--server` calls, tests).
public struct RequestSigner: Sendable {
    public let accessKey: String
    let secretKey: String
    public let region: String
    public let service: String

    public init(accessKey: String, secretKey: String, region: String = "nova", service: String = "stratus") {
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.region = region
        self.service = service
    }

    /// The headers to add (`Authorization`, `X-Amz-Date`, `X-Amz-Content-SHA256`) for a request to `url`.
    ///
    /// - Parameter unsignedPayload: sign `UNSIGNED-PAYLOAD` instead of the body's SHA-256 (S3
    ///   allows it; a benchmark streaming a gigabyte does not hash it first).
    public func headers(method: String, url: URL, headers: [(name: String, value: String)] = [], body: Data = Data(), unsignedPayload: Bool = false, now: Date = Date()) -> [(name: String, value: String)] {
        let amzDate = RequestVerifier.v4Stamp(now)
        let payload = unsignedPayload ? "UNSIGNED-PAYLOAD" : AWSEncoding.hex(SHA256.hash(data: body))
        var host = url.host ?? ""
        if let port = url.port { host += ":\(port)" }
        var all = headers + [("host", host), ("x-amz-date", amzDate), ("x-amz-content-sha256", payload)]
        all.sort { $0.name.lowercased() < $1.name.lowercased() }
        let components = URLComponents(url: url, resolvingAgainstBaseURL: false)
        let request = SignableRequest(method: method, path: components?.percentEncodedPath ?? "/", query: components?.percentEncodedQuery ?? "", headers: all)
        let signed = Array(Set(all.map { $0.name.lowercased() })).sorted().joined(separator: ";")
        let scope = CredentialScope(accessKey: accessKey, date: String(amzDate.prefix(8)), region: region, service: service)
        let verifier = RequestVerifier(service: service == "s3" ? .s3 : .standard)
        // The names come from `all`, so every signed header exists and this cannot throw.
        let canonical = (try? verifier.canonicalRequest(request, signedHeaders: signed, query: request.query, excludeSignature: false, payload: payload)) ?? ""
        let signature = RequestVerifier.signature(
            key: RequestVerifier.signingKey(secret: secretKey, scope: scope),
            stringToSign: RequestVerifier.stringToSign(amzDate: amzDate, scope: scope, canonicalRequest: canonical)
        )
        return [
            ("Authorization", "AWS4-HMAC-SHA256 Credential=\(accessKey)/\(scope.text), SignedHeaders=\(signed), Signature=\(signature)"),
            ("X-Amz-Date", amzDate),
            ("X-Amz-Content-SHA256", payload),
        ]
    }

    /// `url` presigned with SigV4 in its query (as `aws s3 presign`): anyone holding it may make
    /// this one request until `expires` has passed, and nothing else. Only `host` is signed and
    /// the payload is `UNSIGNED-PAYLOAD`, so any HTTP client can use it as it is.
    public func presignedURL(method: String = "GET", url: URL, expires: Duration, now: Date = Date()) -> URL {
        let amzDate = RequestVerifier.v4Stamp(now)
        let scope = CredentialScope(accessKey: accessKey, date: String(amzDate.prefix(8)), region: region, service: service)
        // The Host header as clients send it: an IPv6 address in brackets, no default port.
        var host = url.host ?? ""
        if host.contains(":") && !host.hasPrefix("[") { host = "[\(host)]" }
        if let port = url.port, port != (url.scheme == "https" ? 443 : 80) { host += ":\(port)" }
        var components = URLComponents(url: url, resolvingAgainstBaseURL: false) ?? URLComponents()
        let parameters = [
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"), ("X-Amz-Credential", "\(accessKey)/\(scope.text)"), ("X-Amz-Date", amzDate),
            ("X-Amz-Expires", "\(max(1, min(604_800, expires.components.seconds)))"), ("X-Amz-SignedHeaders", "host"),
        ]
        let query = ([components.percentEncodedQuery].compactMap { $0 } + parameters.map { "\($0.0)=\(AWSEncoding.encode($0.1))" }).joined(separator: "&")
        let request = SignableRequest(method: method, path: components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath, query: query, headers: [("host", host)])
        let verifier = RequestVerifier(service: service == "s3" ? .s3 : .standard)
        let canonical = (try? verifier.canonicalRequest(request, signedHeaders: "host", query: query, excludeSignature: true, payload: "UNSIGNED-PAYLOAD")) ?? ""
        let signature = RequestVerifier.signature(
            key: RequestVerifier.signingKey(secret: secretKey, scope: scope),
            stringToSign: RequestVerifier.stringToSign(amzDate: amzDate, scope: scope, canonicalRequest: canonical)
        )
        components.percentEncodedQuery = query + "&X-Amz-Signature=" + signature
        return components.url ?? url
    }
}
