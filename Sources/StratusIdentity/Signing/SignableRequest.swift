import Foundation

/// An HTTP request as the server received it, in the form the signature checks need.
public struct SignableRequest: Sendable {
    /// `GET`, `POST`, … as sent.
    public var method: String
    /// The path exactly as on the request line (still percent-encoded), without the query.
    public var path: String
    /// The raw query string, without `?`.
    public var query: String
    /// Every header as received, names in any case, repeated names kept.
    public var headers: [(name: String, value: String)]
    /// The body; nil when it has not been read (it is then trusted to `x-amz-content-sha256`).
    public var body: Data?

    public init(method: String, path: String, query: String = "", headers: [(name: String, value: String)], body: Data? = nil) {
        self.method = method
        self.path = path.isEmpty ? "/" : path
        self.query = query
        self.headers = headers
        self.body = body
    }

    /// All values of the header `name` (case-insensitive), in arrival order.
    public func values(of name: String) -> [String] {
        let lowered = name.lowercased()
        return headers.filter { $0.name.lowercased() == lowered }.map(\.value)
    }

    /// The first value of the header `name`.
    public func header(_ name: String) -> String? { values(of: name).first }

    /// The query's parameters, decoded.
    public var queryParameters: [(name: String, value: String)] { AWSEncoding.parameters(query) }

    /// The body's parameters when it is an HTML form (`application/x-www-form-urlencoded`), as EC2 clients POST them (also when the type is left out).
    public var formParameters: [(name: String, value: String)] {
        guard let body else { return [] }
        if let type = header("content-type"), !type.lowercased().hasPrefix("application/x-www-form-urlencoded") { return [] }
        return AWSEncoding.parameters(String(decoding: body, as: UTF8.self), form: true)
    }
}

/// Which API the request is for: the two differ in how the path enters a SigV4 signature.
public enum SigningService: Sendable {
    /// EC2 and the resource API: the path is normalized and encoded again (as botocore does for every service but S3).
    case standard
    /// S3: the path is used as sent.
    case s3
}
