import Hummingbird
import HTTPTypes
import StratusTelemetry

/// The outermost middleware of the resource API and the dashboard: gives each request an id
/// (`x-amz-request-id`, and `RequestID.current` while it is served, so its log lines and store
/// events carry it) and counts it with its latency in `telemetry`.
///
/// `classify` names the API and the route (`resource`, `list`), never by the path itself: a
/// path holds names and ids, and a label must be one of a bounded set.
public struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let telemetry: Telemetry?
    let classify: @Sendable (Request) -> (api: String, action: String)

    public init(telemetry: Telemetry?, classify: @escaping @Sendable (Request) -> (api: String, action: String)) {
        self.telemetry = telemetry
        self.classify = classify
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let id = RequestID.make()
        let started = ContinuousClock.now
        var code = 500
        defer {
            if let telemetry {
                let (api, action) = classify(request)
                telemetry.count(.apiRequests, [("api", api), ("action", action), ("code", "\(code)")])
                telemetry.time(.apiRequestDuration, [("api", api), ("action", action)], ContinuousClock.now - started)
            }
        }
        do {
            var response = try await RequestID.$current.withValue(id) { try await next(request, context) }
            response.headers[Self.requestIdHeader] = id
            code = response.status.code
            return response
        } catch let error as any HTTPResponseError {
            code = error.status.code
            throw error
        }
    }

    static var requestIdHeader: HTTPField.Name { HTTPField.Name("x-amz-request-id")! }
}
