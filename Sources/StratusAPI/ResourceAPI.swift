import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import StratusModel
import StratusStore

/// The resource API that `stratus --server` talks to: JSON over HTTP on the store.
///
/// Every route is a thin call into the store, so the CLI's local and remote modes share one
/// behaviour. It listens on 127.0.0.1 unless configured otherwise; requests will need signed
/// credentials once identities exist (issue 4).
public struct ResourceAPI: Sendable {
    let store: Store
    let dataDirectory: String
    let node: (any NodeOperations)?

    public init(store: Store, dataDirectory: String, node: (any NodeOperations)? = nil) {
        self.store = store
        self.dataDirectory = dataDirectory
        self.node = node
    }

    /// The Hummingbird application for this API.
    public func application(host: String, port: Int, logger: Logger, onRunning: @escaping @Sendable (Int) async -> Void)
        -> some ApplicationProtocol
    {
        let router = Router(context: APIRequestContext.self)
        router.middlewares.add(ErrorMiddleware())  // before the routes: only routes added later get it
        router.get("/healthz") { _, _ in "ok\n" }
        router.post("/v1/plan") { request, context in try await self.plan(request, context) }
        router.get("/v1/resources") { request, _ in try self.list(request) }
        router.get("/v1/resource") { request, _ in try self.resource(request) }
        router.get("/v1/describe") { request, _ in try self.describe(request) }
        router.post("/v1/delete") { request, context in try await self.delete(request, context) }
        router.get("/v1/events") { request, _ in try self.events(request) }
        router.get("/v1/console") { request, _ in try self.console(request) }
        router.post("/v1/reboot") { request, _ in try await self.reboot(request) }
        router.get("/v1/drift") { _, _ in try await self.drift() }
        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "stratus"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }

    func plan(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let body = try await request.decode(as: PlanRequest.self, context: context)
        let sources = body.sources.map { ManifestSource(name: $0.name, data: Data($0.text.utf8)) }
        let documents = try ManifestLoader.load(sources, defaultProject: body.project, cache: body.useParseCache ? store : nil, cacheSalt: "server")
        let options = ApplyOptions(applySet: body.applySet, prune: body.prune, allowMassDelete: body.allowMassDelete)
        let plan = body.commit ? try store.apply(documents, options: options) : try store.plan(documents, options: options)
        return try json(plan)
    }

    func list(_ request: Request) throws -> Response {
        let kind = try kindParameter(request)
        return try json(ResourceItems(items: try store.list(kind: kind, project: request.uri.queryParameters["project"].map(String.init)).map(\.resource)))
    }

    func resource(_ request: Request) throws -> Response {
        try json(try lookup(request).resource)
    }

    func describe(_ request: Request) throws -> Response {
        let found = try lookup(request)
        return try json(Description(resource: found.resource, events: try store.events(for: found.key)))
    }

    func delete(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let body = try await request.decode(as: DeleteRequest.self, context: context)
        let outcomes = try store.delete(body.keys).map { DeleteOutcomeWire(key: $0.0, outcome: $0.1.rawValue) }
        return try json(outcomes)
    }

    func events(_ request: Request) throws -> Response {
        let after = request.uri.queryParameters["after"].flatMap { Int64(String($0)) } ?? 0
        let limit = request.uri.queryParameters["limit"].flatMap { Int(String($0)) } ?? 1000
        return try json(try store.events(after: after, limit: min(limit, 10_000)))
    }

    func console(_ request: Request) throws -> Response {
        let instance = try lookup(request)
        guard let id = instance.metadata.id, let text = try? String(contentsOfFile: "\(dataDirectory)/instances/\(id)/console.log", encoding: .utf8) else {
            throw APIError(kind: "notFound", message: "no console log for \(instance.key) (status: \(instance.displayPhase)): the guest has not started on this node yet, it runs on another node, or the hypervisor keeps no console (test:///)")
        }
        return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    func reboot(_ request: Request) async throws -> Response {
        guard let node else { throw APIError(kind: "badRequest", message: "this server runs no hypervisor") }
        let instance = try lookup(request)
        guard instance.key.kind == .instance else { throw APIError(kind: "badRequest", message: "only instances can be rebooted") }
        try await node.reboot(instance)
        try store.recordEvent(instance.key, reason: "Rebooted", message: "reboot requested through the API")
        return try json(["rebooted": instance.key.description])
    }

    func drift() async throws -> Response {
        guard let node else { throw APIError(kind: "badRequest", message: "this server runs no hypervisor") }
        return try json(try await node.drift())
    }

    /// A resource by kind and name or EC2 id, in `project` when given.
    func lookup(_ request: Request) throws -> StoredResource {
        let kind = try kindParameter(request)
        guard let kind, let name = request.uri.queryParameters["name"].map(String.init) else {
            throw APIError(kind: "badRequest", message: "kind and name are required")
        }
        return try store.find(kind: kind, name: name, project: request.uri.queryParameters["project"].map(String.init))
    }

    func kindParameter(_ request: Request) throws -> Kind? {
        guard let text = request.uri.queryParameters["kind"].map(String.init) else { return nil }
        guard let kind = Kind.named(text) else { throw APIError(kind: "badRequest", message: "unknown kind \"\(text)\"") }
        return kind
    }
}

/// The request context of the API: like Hummingbird's basic one, with room for large manifest sets.
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// 100,000 resources of manifests are about 20 MB.
    public var maxUploadSize: Int { 256 << 20 }
}

/// `{"items": […]}`.
public struct ResourceItems: Codable, Sendable {
    public var items: [Resource]
}

/// Encodes a value as the JSON body of a 200 response.
func json(_ value: some Encodable) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
}

/// Turns the store's and the loader's errors into JSON bodies with fitting statuses.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let errors as ManifestErrors {
            return try reply(.unprocessableContent, APIError(kind: "manifest", message: "\(errors.errors.count) errors", manifestErrors: errors.errors))
        } catch let error as StoreError {
            return try reply(error.isNotFound ? .notFound : .conflict, APIError(kind: "store", message: error.message, code: error.codeName))
        } catch let error as APIError {
            return try reply(error.kind == "notFound" ? .notFound : .badRequest, error)
        } catch let error as HTTPError {
            return try reply(error.status, APIError(kind: "badRequest", message: error.body ?? "\(error.status)"))
        } catch {
            return try reply(.internalServerError, APIError(kind: "internal", message: "\(error)"))
        }
    }

    private func reply(_ status: HTTPResponse.Status, _ error: APIError) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(error))))
    }
}
