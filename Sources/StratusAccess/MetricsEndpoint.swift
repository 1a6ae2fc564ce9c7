import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import StratusTelemetry

/// `GET /metrics`: the Prometheus text format of a `Telemetry`, open to any scraper (it shows
/// counts, never names or secrets) unless a bearer token is configured (`--metrics-token-file`).
public enum MetricsEndpoint {
    public static func response(_ request: Request, telemetry: Telemetry, token: String?) async throws -> Response {
        if let token {
            let given = request.headers[.authorization].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil } ?? ""
            // Compared as digests, in constant time: the comparison says nothing of the token's prefix.
            guard Data(SHA256.hash(data: Data(given.utf8))) == Data(SHA256.hash(data: Data(token.utf8))) else {
                return Response(status: .unauthorized, headers: [.wwwAuthenticate: "Bearer realm=\"stratus metrics\"", .contentType: "text/plain; charset=utf-8"],
                                body: .init(byteBuffer: ByteBuffer(string: "/metrics needs the bearer token of --metrics-token-file: Authorization: Bearer TOKEN\n")))
            }
        }
        let text = await telemetry.render()
        return Response(status: .ok, headers: [.contentType: Telemetry.contentType], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// The token of `--metrics-token-file`, trimmed; an error names the file when it cannot be read or is empty.
    public static func token(file: String) throws -> String {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw MetricsTokenError("metrics-token-file: cannot read \(file)") }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw MetricsTokenError("metrics-token-file: \(file) is empty; put the token Prometheus sends (bearer_token_file) in it") }
        return token
    }
}

/// A `--metrics-token-file` that cannot serve as a token.
public struct MetricsTokenError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension MetricsEndpoint {
    /// A listener of its own for `/metrics` (`--metrics-listen`), so Prometheus can scrape from a
    /// network the APIs are not on.
    public static func application(host: String, port: Int, limits: HTTPLimits, telemetry: Telemetry, token: String?, logger: Logger,
                                   onRunning: @escaping @Sendable (Int) async -> Void) -> some ApplicationProtocol {
        let router = Router()
        router.get("/metrics") { request, _ in try await response(request, telemetry: telemetry, token: token) }
        router.get("/healthz") { _, _ in "ok\n" }
        return Application(
            router: router,
            server: limits.server(logger: logger),
            configuration: limits.configuration(host: host, port: port, serverName: "stratus-metrics", logger: logger),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }
}
