import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import StratusAccess
import StratusIdentity
import StratusModel
import StratusStore
import StratusTelemetry

/// The S3 API (`--s3-port`, 3333): buckets owned by projects, objects streamed to files.
///
/// Path-style (`/bucket/key`) and virtual-host-style (`bucket.DOMAIN`, with `--s3-domain`)
/// requests; SigV4 (header, presigned, aws-chunked) and SigV2 (header, presigned); anonymous
/// reads of public buckets only. Errors are S3's XML with `x-amz-request-id`.
public struct S3API: Sendable {
    let store: Store
    let files: ObjectFiles
    let committer: ObjectCommitter
    let authenticator: Authenticator
    let region: String
    /// The domain of virtual-host-style requests (`s3.example.com`: `bucket.s3.example.com`).
    let domain: String?
    let logger: Logger
    /// Where requests are counted; nil counts nothing.
    let telemetry: Telemetry?

    /// The largest object a single PUT may store (S3's 5 GiB).
    static let maximumPut: Int64 = 5 << 30

    public init(store: Store, dataDirectory: String, region: String = "nova", domain: String? = nil, logger: Logger = Logger(label: "stratus.s3"), telemetry: Telemetry? = nil) throws {
        self.store = store
        self.telemetry = telemetry
        self.files = try ObjectFiles(dataDirectory: dataDirectory)
        self.committer = ObjectCommitter(store: store)
        self.authenticator = Authenticator(store: store, service: .s3, scope: ("s3", [region]))
        self.region = region
        self.domain = domain?.lowercased()
        self.logger = logger
        let removed = files.sweep(keep: try store.objectFiles())
        if removed > 0 { logger.info("removed files of uploads that never completed", metadata: ["stratus.files": "\(removed)"]) }
    }

    /// The Hummingbird application serving S3 on `host:port` (0 picks a free port, passed to `onRunning`).
    public func application(host: String, port: Int, limits: HTTPLimits = HTTPLimits(), logger: Logger, onRunning: @escaping @Sendable (Int) async -> Void) -> some ApplicationProtocol {
        Application(
            responder: CallbackResponder<S3RequestContext> { request, context in await self.handle(request, context) },
            server: limits.server(logger: logger, expectContinue: true),
            configuration: limits.configuration(host: host, port: port, serverName: "stratus-s3", logger: logger),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }

    /// Authenticates, routes and answers one request; every failure becomes S3 error XML.
    func handle(_ request: Request, _ context: S3RequestContext) async -> Response {
        let requestId = RequestID.make()
        let started = ContinuousClock.now
        var operation = "Unknown"
        let response = await RequestID.$current.withValue(requestId) { await answer(request, context, requestId: requestId, operation: &operation) }
        if let telemetry {
            telemetry.count(.apiRequests, [("api", "s3"), ("action", operation), ("code", "\(response.status.code)")])
            telemetry.time(.apiRequestDuration, [("api", "s3"), ("action", operation)], ContinuousClock.now - started)
        }
        return response
    }

    func answer(_ request: Request, _ context: S3RequestContext, requestId: String, operation: inout String) async -> Response {
        var target = ""
        do {
            let call = try S3Call(request, domain: domain)
            operation = call.operation(copySource: request.headers[.init("x-amz-copy-source")!] != nil)
            target = call.resource
            let principal = try authenticate(call, request)
            var response = try await route(call, principal: principal, request: request, context: context)
            response.headers[.init("x-amz-request-id")!] = requestId
            return response
        } catch {
            let failure = Self.s3Error(error)
            if failure.status >= 500 { logger.error("internal error", metadata: ["stratus.requestId": "\(requestId)", "stratus.error": "\(error)"]) }
            var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>\(S3XML.escape(failure.code))</Code><Message>\(S3XML.escape(failure.message))</Message>"
            for (name, value) in failure.details { xml += "<\(name)>\(S3XML.escape(value))</\(name)>" }
            xml += "<Resource>\(S3XML.escape(target))</Resource><RequestId>\(requestId)</RequestId></Error>"
            var headers: HTTPFields = [.contentType: "application/xml", .init("x-amz-request-id")!: requestId]
            // A HEAD answer has no body; clients read the code from the status alone.
            if request.method == .head {
                headers[.contentLength] = "0"
                return Response(status: .init(code: failure.status), headers: headers)
            }
            return Response(status: .init(code: failure.status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: xml)))
        }
    }

    /// The signer, or nil for an anonymous request (allowed only where a bucket is public).
    func authenticate(_ call: S3Call, _ request: Request) throws -> (principal: Principal, verified: VerifiedRequest)? {
        let signable = call.signable(request)
        let signed = signable.header("authorization") != nil
            || call.query.keys.contains { ["X-Amz-Signature", "X-Amz-Credential", "Signature", "AWSAccessKeyId"].contains($0) }
        guard signed else { return nil }
        do {
            return try authenticator.authenticate(signable)
        } catch let error as AuthenticationError {
            throw S3Error(error.s3Code, error.message, status: error.s3Code == "SignatureDoesNotMatch" || error.s3Code == "InvalidAccessKeyId" || error.s3Code == "AccessDenied" || error.s3Code == "RequestTimeTooSkewed" ? 403 : 400)
        }
    }

    static func s3Error(_ error: any Error) -> S3Error {
        switch error {
        case let error as S3Error: return error
        // AWS has no such code; Ceph RGW's (and so what S3 tools already know) is QuotaExceeded, 403.
        case let error as ObjectQuotaExceeded: return S3Error("QuotaExceeded", error.message, status: 403)
        case let error as ObjectBucketGone: return S3Error.noSuchBucket(error.bucket)
        case let error as StoreError: return S3Error("InvalidRequest", error.message)
        case let error as HTTPError where error.status.code < 500: return S3Error("InvalidRequest", error.body ?? "\(error.status)", status: Int(error.status.code))
        default: return S3Error("InternalError", "We encountered an internal error. Please try again.", status: 500)
        }
    }
}

/// The request context of the S3 API: bodies stream, so no upload limit applies here.
public struct S3RequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public init(source: ApplicationRequestContextSource) { coreContext = .init(source: source) }
    public var maxUploadSize: Int { Int(S3API.maximumPut) }
}

/// One S3 request's target and parameters.
struct S3Call {
    let method: HTTPRequest.Method
    let bucket: String?
    let key: String?
    /// Query parameters, decoded; the first of a name wins.
    let query: [String: String]
    let rawPath: String
    let rawQuery: String

    init(_ request: Request, domain: String?) throws {
        method = request.method
        rawPath = request.uri.path.isEmpty ? "/" : request.uri.path
        rawQuery = request.uri.query ?? ""
        var parameters: [String: String] = [:]
        for (name, value) in AWSEncoding.parameters(rawQuery) where parameters[name] == nil { parameters[name] = value }
        query = parameters
        let host = (request.head.authority ?? "").lowercased()
        let hostName = host.split(separator: ":").first.map(String.init) ?? host
        if let domain, hostName.hasSuffix("." + domain) {
            bucket = String(hostName.dropLast(domain.count + 1))
            let key = AWSEncoding.decode(rawPath.dropFirst())
            self.key = key.isEmpty ? nil : key
        } else {
            let trimmed = rawPath.dropFirst()
            if trimmed.isEmpty {
                bucket = nil
                key = nil
            } else if let slash = trimmed.firstIndex(of: "/") {
                bucket = AWSEncoding.decode(trimmed[..<slash])
                let key = AWSEncoding.decode(trimmed[trimmed.index(after: slash)...])
                self.key = key.isEmpty ? nil : key
            } else {
                bucket = AWSEncoding.decode(trimmed)
                key = nil
            }
        }
        if let key, key.utf8.count > 1024 {
            throw S3Error("KeyTooLongError", "Your key is too long (\(key.utf8.count) bytes; at most 1024).")
        }
    }

    /// `/bucket/key`, as error documents name it.
    var resource: String { "/" + [bucket, key].compactMap { $0 }.joined(separator: "/") }

    func signable(_ request: Request) -> SignableRequest {
        var headers = request.headers.map { (name: $0.name.canonicalName, value: $0.value) }
        if let authority = request.head.authority, !headers.contains(where: { $0.name == "host" }) { headers.append((name: "host", value: authority)) }
        return SignableRequest(method: request.method.rawValue, path: rawPath, query: rawQuery, headers: headers, body: nil)
    }

    func has(_ name: String) -> Bool { query[name] != nil }
}

enum S3XML {
    static func escape(_ text: String) -> String {
        // Most names need nothing: scan the bytes once before building anything.
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "&") || $0 == UInt8(ascii: "<") || $0 == UInt8(ascii: ">") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "'") }) {
            return text
        }
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default:
                // XML 1.0 cannot carry most control characters; S3 clients ask for encoding-type=url for such keys.
                if scalar.value < 0x20 && scalar != "\t" && scalar != "\n" && scalar != "\r" {
                    out += "&#x\(String(scalar.value, radix: 16));"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    static func document(_ root: String, _ body: String) -> String {
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<\(root) xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\(body)</\(root)>"
    }

    static func element(_ name: String, _ value: String) -> String { "<\(name)>\(escape(value))</\(name)>" }

    static func response(_ root: String, _ body: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/xml"], body: .init(byteBuffer: ByteBuffer(string: document(root, body))))
    }

    /// S3's timestamps: `2026-12-01T14:00:00.000Z`.
    static func timestamp(_ stored: String) -> String {
        stored.hasSuffix("Z") && !stored.contains(".") ? String(stored.dropLast()) + ".000Z" : stored
    }
}
