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

/// The resource API that `stratus --server` talks to: JSON over HTTP on the store.
///
/// Every route is a thin call into the store, so the CLI's local and remote modes share one
/// behaviour. Every request but `/healthz` must be signed (SigV4, as `stratus credentials`
/// issues keys) and is authorized by the signer's roles: `cloudadmin` for cluster-scoped kinds,
/// membership and a fitting project role for project resources (`Principal.canWrite`).
public struct ResourceAPI: Sendable {
    let store: Store
    let dataDirectory: String
    let node: (any NodeOperations)?
    /// The largest request body accepted (413 beyond it); read only after the signature's
    /// access key and scope passed `Authenticator.precheck`.
    let maxBodyBytes: Int

    /// What `/metrics` renders, and where this API's requests are counted; nil serves no `/metrics`.
    let telemetry: Telemetry?
    /// With `--metrics-token-file`: the bearer token `/metrics` requires.
    let metricsToken: String?
    /// The web dashboard at `/ui`, once `withDashboard()` added it.
    var dashboard: Dashboard?

    /// This API with the web dashboard at `/ui` (its signing key is made in the data directory).
    public func withDashboard() throws -> ResourceAPI {
        var api = self
        api.dashboard = try Dashboard(store: store, dataDirectory: dataDirectory, node: node, region: region, telemetry: telemetry)
        return api
    }

    /// Queues an immediate sync of a GitSync (`POST /hooks/git/<name>`); false when nothing runs syncs.
    let gitTrigger: (@Sendable (String) async -> Bool)?

    public init(
        store: Store, dataDirectory: String, node: (any NodeOperations)? = nil, maxBodyBytes: Int = 256 << 20, region: String = ResourceAPI.defaultRegion,
        gitTrigger: (@Sendable (String) async -> Bool)? = nil, telemetry: Telemetry? = nil, metricsToken: String? = nil
    ) {
        self.gitTrigger = gitTrigger
        self.telemetry = telemetry
        self.metricsToken = metricsToken
        self.region = region
        self.store = store
        self.dataDirectory = dataDirectory
        self.node = node
        self.maxBodyBytes = maxBodyBytes
    }

    /// The SigV4 service name the CLI signs for (`RequestSigner`'s default), and the region a
    /// server serves unless `--region` says otherwise.
    public static let signingService = "stratus"
    public static let defaultRegion = "nova"
    /// The region signatures must be scoped to.
    public let region: String

    /// The Hummingbird application for this API.
    public func application(host: String, port: Int, limits: HTTPLimits = HTTPLimits(), logger: Logger, onRunning: @escaping @Sendable (Int) async -> Void)
        -> some ApplicationProtocol
    {
        let router = Router(context: APIRequestContext.self)
        router.middlewares.add(RequestMetricsMiddleware(telemetry: telemetry, classify: Self.classify))
        router.middlewares.add(ErrorMiddleware())  // before the routes: only routes added later get it
        router.get("/healthz") { _, _ in "ok\n" }
        if let telemetry {
            // Prometheus does not sign requests: counts only, never names or secrets; a bearer token with --metrics-token-file.
            router.get("/metrics") { request, _ in try await MetricsEndpoint.response(request, telemetry: telemetry, token: metricsToken) }
        }
        // A browser's: a session cookie and CSRF tokens, not signatures.
        dashboard?.add(to: router)
        // Signed by the git host with the GitSync's webhook secret, not by an AWS key.
        router.post("/hooks/git/:name") { request, context in try await self.gitHook(request, context) }
        router.middlewares.add(SignatureMiddleware(authenticator: Authenticator(store: store, service: .standard, scope: (Self.signingService, [region])), maxBodyBytes: maxBodyBytes))
        router.post("/v1/plan") { request, context in try await self.plan(request, context) }
        router.get("/v1/resources") { request, context in try self.list(request, context) }
        router.get("/v1/resource") { request, context in try self.resource(request, context) }
        router.get("/v1/describe") { request, context in try self.describe(request, context) }
        router.post("/v1/delete") { request, context in try await self.delete(request, context) }
        router.get("/v1/events") { request, context in try self.events(request, context) }
        router.get("/v1/console") { request, context in try await self.console(request, context) }
        router.post("/v1/reboot") { request, context in try await self.reboot(request, context) }
        router.get("/v1/drift") { _, context in try await self.drift(context) }
        router.post("/v1/drain") { request, context in try await self.drain(request, context) }
        router.post("/v1/credentials") { request, context in try await self.credentials(request, context) }
        router.get("/v1/usage") { request, context in try self.usage(request, context) }
        router.post("/v1/dashboard/link") { request, context in try self.dashboardLink(request, context) }
        router.get("/v1/whoami") { _, context in try json(WhoAmI(try context.requirePrincipal())) }
        return Application(
            router: router,
            server: limits.server(logger: logger),
            configuration: limits.configuration(host: host, port: port, serverName: "stratus", logger: logger),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }

    /// The routes of this API by path, for the `action` label of the request metrics.
    static let actions: [String: String] = [
        "/healthz": "healthz", "/metrics": "metrics", "/v1/plan": "plan", "/v1/resources": "list", "/v1/resource": "get",
        "/v1/describe": "describe", "/v1/delete": "delete", "/v1/events": "events", "/v1/console": "console", "/v1/reboot": "reboot",
        "/v1/drift": "drift", "/v1/drain": "drain", "/v1/credentials": "credentials", "/v1/whoami": "whoami", "/v1/dashboard/link": "dashboardLink", "/v1/usage": "usage",
    ]

    @Sendable static func classify(_ request: Request) -> (api: String, action: String) {
        let path = request.uri.path
        if path == "/ui" || path.hasPrefix("/ui/") { return ("dashboard", Dashboard.actions[path] ?? "other") }
        if let known = actions[path] { return ("resource", known) }
        if path.hasPrefix("/hooks/git/") { return ("resource", "gitHook") }
        return ("resource", "other")
    }

    func plan(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let body = try await request.decode(as: PlanRequest.self, context: context)
        let sources = body.sources.map { ManifestSource(name: $0.name, data: Data($0.text.utf8)) }
        let documents = try ManifestLoader.load(sources, defaultProject: body.project, cache: body.useParseCache ? store : nil, cacheSalt: "server")
        var options = ApplyOptions(applySet: body.applySet, prune: body.prune, allowMassDelete: body.allowMassDelete)
        options.expectVersion = body.expectVersion
        let principal = try context.requirePrincipal()
        if !principal.isCloudAdmin {
            // Every change the plan makes (prunes included), in the transaction that commits it.
            options.authorize = { change in
                try Self.authorizeWrite(principal, change.key)
                if change.key.kind == .keyPair { try Self.authorizeKeyPair(principal, change) }
            }
        }
        let plan = body.commit ? try store.apply(documents, options: options) : try store.plan(documents, options: options)
        return try json(plan)
    }

    /// Nodes' capacity and allocation (cloudadmin and itsec, who see every instance) and the
    /// quota tables of the projects the caller may see (`project` narrows them to one).
    func usage(_ request: Request, _ context: APIRequestContext) throws -> Response {
        let principal = try context.requirePrincipal()
        var projects = principal.canReadEveryProject ? try store.list(kind: .project).map(\.key.name) : principal.memberships.keys.sorted()
        if let project = request.uri.queryParameters["project"].map(String.init) {
            guard projects.contains(project) else { throw APIError(kind: "notFound", message: "no project \(project)") }
            projects = [project]
        }
        return try json(try store.usage(projects: projects.sorted(), nodes: principal.canReadEveryProject))
    }

    /// A one-time sign-in link for the caller, or (cloudadmin) for another user; five minutes, one use.
    func dashboardLink(_ request: Request, _ context: APIRequestContext) throws -> Response {
        guard let dashboard else { throw APIError(kind: "badRequest", message: "this server serves no dashboard") }
        let principal = try context.requirePrincipal()
        let user = request.uri.queryParameters["user"].map(String.init) ?? principal.user
        guard principal.isCloudAdmin || principal.user == user else {
            throw APIError(kind: "forbidden", message: "user \(principal.user) may not sign in as \(user): that needs the cloudadmin role")
        }
        let exists = try user == Store.rootUser || store.get(ResourceKey(kind: .user, project: nil, name: user)) != nil
        guard exists else {
            throw APIError(kind: "notFound", message: "no user \(user)")
        }
        let expiry = Date().addingTimeInterval(300)
        let token = dashboard.key.link(user: user, expiry: expiry)
        return try json(DashboardLink(user: user, path: "/ui/login?token=\(token)", expires: Timestamp.string(expiry), url: nil))
    }

    func credentials(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let body = try await request.decode(as: CredentialRequest.self, context: context)
        let principal = try context.requirePrincipal()
        guard principal.isCloudAdmin || principal.user == body.user else {
            throw APIError(kind: "forbidden", message: "user \(principal.user) may not read the keys of \(body.user): that needs the cloudadmin role")
        }
        let project = body.project ?? ""
        let credential = body.rotate ? try store.rotateCredential(user: body.user, project: project) : try store.credential(user: body.user, project: project)
        // The endpoints' ports are chosen at start (port 0 picks one): serve.json has them.
        let info = ServeInfo.read(dataDirectory: dataDirectory)
        return try json(CredentialWire(credential, ec2URL: info?.ec2URL, s3URL: info?.s3URL, region: info?.region))
    }

    func list(_ request: Request, _ context: APIRequestContext) throws -> Response {
        let kind = try kindParameter(request)
        let principal = try context.requirePrincipal()
        let items = try store.list(kind: kind, project: request.uri.queryParameters["project"].map(String.init)).filter { canRead(principal, $0.key) }
        return try json(ResourceItems(items: items.map(\.resource)))
    }

    func resource(_ request: Request, _ context: APIRequestContext) throws -> Response {
        try json(try lookup(request, context).resource)
    }

    func describe(_ request: Request, _ context: APIRequestContext) throws -> Response {
        guard try allProjectsParameter(request) else {
            let found = try lookup(request, context)
            return try json(Description(resource: found.resource, events: try store.events(for: found.key), fieldManagers: try store.fieldManagers(found.key)))
        }
        guard let kind = try kindParameter(request) else { throw APIError(kind: "badRequest", message: "kind is required") }
        let name = request.uri.queryParameters["name"].map(String.init)
        let principal = try context.requirePrincipal()
        let found = try store.list(kind: kind).filter { canRead(principal, $0.key) && (name.map($0.isCalled) ?? true) }
        return try json(Descriptions(items: try found.map { Description(resource: $0.resource, events: try store.events(for: $0.key), fieldManagers: try store.fieldManagers($0.key)) }))
    }

    func delete(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let body = try await request.decode(as: DeleteRequest.self, context: context)
        let principal = try context.requirePrincipal()
        for key in body.keys {
            try authorizeWrite(principal, key)
            if key.kind == .keyPair, let stored = try store.get(key), case .keyPair(let spec) = stored.resource.spec,
                !principal.canManageKeyPair(owner: spec.user, project: key.project)
            {
                throw APIError(kind: "forbidden", message: principal.keyPairDenial(owner: spec.user, project: key.project, name: key.name))
            }
        }
        let outcomes = try store.delete(body.keys, reason: "deletion requested by \(principal.user)").map { DeleteOutcomeWire(key: $0.0, outcome: $0.1.rawValue) }
        return try json(outcomes)
    }

    func events(_ request: Request, _ context: APIRequestContext) throws -> Response {
        let after = request.uri.queryParameters["after"].flatMap { Int64(String($0)) } ?? 0
        let limit = request.uri.queryParameters["limit"].flatMap { Int(String($0)) } ?? 1000
        let principal = try context.requirePrincipal()
        let events = try store.events(after: after, limit: min(limit, 10_000))
        // Filtering keeps the sequence numbers, so a client's cursor still advances past hidden events.
        return try json(principal.isCloudAdmin ? events : events.filter { $0.key.map { canRead(principal, $0) } ?? false })
    }

    func console(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let instance = try lookup(request, context)
        var text: String?
        if let id = instance.metadata.id { text = try? String(contentsOfFile: "\(dataDirectory)/instances/\(id)/console.log", encoding: .utf8) }
        // Not in this process's data directory: the instance's node (an agent) keeps it.
        if text == nil, let node { text = try? await node.console(instance) }
        guard let text else {
            throw APIError(kind: "notFound", message: "no console log for \(instance.key) (status: \(instance.displayPhase)): the guest has not started on this node yet, it runs on another node, or the hypervisor keeps no console (test:///)")
        }
        return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    func reboot(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        guard let node else { throw APIError(kind: "badRequest", message: "this server runs no hypervisor") }
        let instance = try lookup(request, context)
        try authorizeWrite(try context.requirePrincipal(), instance.key)
        guard instance.key.kind == .instance else { throw APIError(kind: "badRequest", message: "only instances can be rebooted") }
        try await node.reboot(instance)
        try store.recordEvent(instance.key, reason: "Rebooted", message: "reboot requested through the API")
        return try json(["rebooted": instance.key.description])
    }

    func drain(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        guard principal.isCloudAdmin else { throw APIError(kind: "forbidden", message: "user \(principal.user) may not drain nodes: that needs the cloudadmin role") }
        guard let node else { throw APIError(kind: "badRequest", message: "this server runs no hypervisor") }
        guard let name = request.uri.queryParameters["node"].map(String.init), let stored = try store.get(ResourceKey(kind: .node, project: nil, name: name)) else {
            throw APIError(kind: "notFound", message: "no node \(request.uri.queryParameters["node"].map(String.init) ?? "")")
        }
        let outcomes = try await node.drain(node: stored.key.name)
        let moved = outcomes.filter(\.moved).count
        try store.recordEvent(stored.key, reason: "Drained", message: "\(moved) of \(outcomes.count) instances moved off the node")
        return try json(outcomes)
    }

    func drift(_ context: APIRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        guard principal.isCloudAdmin || principal.globalRoles.contains(.itsec) else {
            throw APIError(kind: "forbidden", message: "user \(principal.user) may not read drift: that needs the cloudadmin or itsec role")
        }
        guard let node else { throw APIError(kind: "badRequest", message: "this server runs no hypervisor") }
        return try json(try await node.drift())
    }

    /// A resource by kind and name or EC2 id, in `project` when given; one the signer may not read is "not found".
    ///
    /// `Store.find`'s errors name what a project holds (a "did you mean" of its names, the
    /// projects an ambiguous name is in), so it is asked only about projects the signer may read:
    /// without a project, a member looks in their own projects alone.
    func lookup(_ request: Request, _ context: APIRequestContext) throws -> StoredResource {
        let kind = try kindParameter(request)
        guard let kind, let name = request.uri.queryParameters["name"].map(String.init) else {
            throw APIError(kind: "badRequest", message: "kind and name are required")
        }
        let project = request.uri.queryParameters["project"].map(String.init)
        let principal = try context.requirePrincipal()
        let notFound = StoreError.notFound(ResourceKey(kind: kind, project: project, name: name))
        if kind.scope == .project, !principal.canReadEveryProject {
            if let project, !principal.canRead(project: project) { throw notFound }
            if project == nil { return try findInMemberProjects(kind: kind, name: name, principal) }
        }
        let found = try store.find(kind: kind, name: name, project: project)
        guard canRead(principal, found.key) else { throw notFound }  // an EC2 id of another project
        return found
    }

    /// `Store.find` without a project, over the projects the signer is a member of.
    private func findInMemberProjects(kind: Kind, name: String, _ principal: Principal) throws -> StoredResource {
        if let prefix = kind.idPrefix, name.hasPrefix(prefix + "-"), let found = try store.get(ec2Id: name), found.key.kind == kind,
            canRead(principal, found.key)
        {
            return found
        }
        let matches = try principal.memberships.keys.sorted().compactMap { try store.get(ResourceKey(kind: kind, project: $0, name: name)) }
        if matches.count == 1 { return matches[0] }
        if matches.isEmpty { throw StoreError.notFound(message: "\(kind.rawValue) \(name) not found in any project") }
        throw StoreError.conflict("\(kind.rawValue) \(name) exists in projects \(matches.map(\.key.project).joined(separator: ", ")); choose one with -p")
    }

    /// `allProjects=true`: every project the signer may read. It names a scope, as `project` does,
    /// so the two together are refused rather than one silently winning.
    func allProjectsParameter(_ request: Request) throws -> Bool {
        guard let text = request.uri.queryParameters["allProjects"] else { return false }
        guard text == "true" || text == "false" else {
            throw APIError(kind: "badRequest", message: "allProjects: expected true or false, got \"\(text)\"")
        }
        if text == "true", request.uri.queryParameters["project"] != nil {
            throw APIError(kind: "badRequest", message: "allProjects=true and project exclude each other: give one")
        }
        return text == "true"
    }

    /// Project resources are visible to members (and cloudadmin, itsec); cluster-scoped ones to every signed-in user.
    func canRead(_ principal: Principal, _ key: ResourceKey) -> Bool {
        key.kind.scope == .cluster || principal.canRead(project: key.project)
    }

    func authorizeWrite(_ principal: Principal, _ key: ResourceKey) throws { try Self.authorizeWrite(principal, key) }

    /// A key pair's owner before and after the change must both be someone the caller may act for.
    static func authorizeKeyPair(_ principal: Principal, _ change: PlannedChange) throws {
        var owners: [String?] = []
        if change.action != .create, case .keyPair(let old)? = change.oldSpec ?? change.newSpec { owners.append(old.user) }
        if change.action != .delete, case .keyPair(let new)? = change.newSpec { owners.append(new.user) }
        for owner in owners where !principal.canManageKeyPair(owner: owner, project: change.key.project) {
            throw APIError(kind: "forbidden", message: principal.keyPairDenial(owner: owner, project: change.key.project, name: change.key.name))
        }
    }

    static func authorizeWrite(_ principal: Principal, _ key: ResourceKey) throws {
        guard principal.canWrite(key.kind, project: key.project) else {
            throw APIError(kind: "forbidden", message: principal.denial(key.kind, project: key.project))
        }
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

    /// Who signed the request; set by `SignatureMiddleware`.
    public var principal: Principal?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    func requirePrincipal() throws -> Principal {
        guard let principal else { throw APIError(kind: "unauthorized", message: "the request is not signed") }
        return principal
    }

    /// 100,000 resources of manifests are about 20 MB.
    public var maxUploadSize: Int { 256 << 20 }
}

/// `{"items": […]}`.
public struct ResourceItems: Codable, Sendable {
    public var items: [Resource]
}

/// Encodes a value as the JSON body of a response (200 unless given).
func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
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
        } catch let error as AuthenticationError {
            return try reply(error.httpStatus == 400 ? .badRequest : .unauthorized, APIError(kind: "unauthorized", message: error.message, code: error.ec2Code))
        } catch let error as APIError {
            let status: HTTPResponse.Status = switch error.kind {
            case "notFound": .notFound
            case "forbidden": .forbidden
            case "unauthorized": .unauthorized
            case "tooLarge": .contentTooLarge
            case "conflict": .conflict
            case "unavailable": .serviceUnavailable
            default: .badRequest
            }
            return try reply(status, error)
        } catch is NIOTooManyBytesError {
            return try reply(.contentTooLarge, APIError(kind: "tooLarge", message: "The request body is larger than this server accepts."))
        } catch let error as HTTPError where error.status.code < 500 {
            return try reply(error.status, APIError(kind: "badRequest", message: error.body ?? "\(error.status)"))
        } catch let error as DecodingError {
            return try reply(.badRequest, APIError(kind: "badRequest", message: "The request body is not what this route expects: \(Self.describe(error))"))
        } catch {
            // The details go to the server's log, never to the client (no internal type names).
            let id = RequestID.current ?? RequestID.make()
            context.logger.error("internal error", metadata: ["stratus.requestId": "\(id)", "stratus.error": "\(error)"])
            return try reply(.internalServerError, APIError(kind: "internal", message: "An internal error has occurred (request \(id)); the server's log has the details."))
        }
    }

    /// A decoding failure in words: the field path and what was wrong, without Swift type names.
    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let text = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return text.isEmpty ? "the body" : String(text.drop { $0 == "." })
        }
        switch error {
        case .keyNotFound(let key, let context): return "\(path(context)): missing field \"\(key.stringValue)\""
        case .typeMismatch(_, let context), .valueNotFound(_, let context): return "\(path(context)): a value of the wrong type"
        case .dataCorrupted(let context): return "\(path(context)): not valid JSON"
        @unknown default: return "not valid JSON"
        }
    }

    private func reply(_ status: HTTPResponse.Status, _ error: APIError) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(error))))
    }
}

/// Checks the request's signature and puts the signer's `Principal` into the context.
struct SignatureMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let authenticator: Authenticator
    let maxBodyBytes: Int

    func handle(_ request: Request, context: APIRequestContext, next: (Request, APIRequestContext) async throws -> Response) async throws -> Response {
        // Refuse what is unsigned or signed with an unknown key before buffering a byte of the body.
        try authenticator.precheck(SignableRequest(request, body: ByteBuffer()))
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw APIError(kind: "tooLarge", message: "The request body is larger than this server accepts (\(maxBodyBytes >> 20) MB, --api-max-body); send fewer manifests per request.")
        } catch {
            // Reading can only fail on what the client sent: a malformed chunk, a body cut short.
            throw APIError(kind: "badRequest", message: "The request body could not be read: a malformed chunk, or a body shorter than announced. Send it again with a valid Content-Length or chunked encoding.")
        }
        let (principal, _) = try authenticator.authenticate(SignableRequest(request, body: body))
        var context = context
        context.principal = principal
        return try await next(request, context)
    }
}

/// `GET /v1/whoami`: the signer, their roles and memberships.
struct WhoAmI: Codable, Sendable {
    var user: String
    var accessKey: String
    var roles: [String]
    var projects: [String: [String]]

    init(_ principal: Principal) {
        user = principal.user
        accessKey = principal.accessKey
        roles = principal.globalRoles.map(\.rawValue).sorted()
        projects = principal.memberships.mapValues { $0.map(\.rawValue).sorted() }
    }
}
