import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import StratusAccess
import StratusIdentity
import StratusModel
import StratusStore
import StratusTelemetry
import Synchronization

/// The web dashboard at `/ui` on the resource API's port: server-rendered pages, a little plain
/// JavaScript for the live feed, nothing fetched from elsewhere (it runs offline).
///
/// A login with an access key and its secret (or a one-time link of `stratus dashboard`) gives a
/// signed, HttpOnly, SameSite=Strict session cookie naming the key; every request reloads that
/// key's principal, so a disabled user or a rotated key ends the session. Every action is a POST
/// with the session's CSRF token, authorized with the same roles as the APIs, and written the way
/// they write (manager `dashboard:<user>`).
struct Dashboard: Sendable {
    let store: Store
    let dataDirectory: String
    let node: (any NodeOperations)?
    let authenticator: Authenticator
    let key: DashboardKey
    let book: SessionBook
    let telemetry: Telemetry?

    static let cookieName = "stratus_session"
    static let sessionLifetime: TimeInterval = 8 * 3600
    static let pageSize = 50
    static let formLimit = 64 << 10

    init(store: Store, dataDirectory: String, node: (any NodeOperations)?, region: String, telemetry: Telemetry?) throws {
        self.store = store
        self.dataDirectory = dataDirectory
        self.node = node
        self.authenticator = Authenticator(store: store, service: .standard)
        self.key = try DashboardKey.load(dataDirectory: dataDirectory)
        self.book = SessionBook()
        self.telemetry = telemetry
    }

    /// Adds the dashboard's routes; they come before the signature middleware (a browser signs nothing).
    func add(to router: Router<APIRequestContext>) {
        router.get("/ui") { request, _ in try await self.page(request) { try self.overview($0, request) } }
        router.get("/ui/login") { request, _ in try await self.loginPage(request) }
        router.post("/ui/login") { request, _ in try await self.login(request) }
        router.post("/ui/logout") { request, _ in try await self.logout(request) }
        router.get("/ui/resources") { request, _ in try await self.page(request) { try self.resources($0, request) } }
        router.get("/ui/resource") { request, _ in try await self.page(request) { try await self.resource($0, request) } }
        router.get("/ui/drift") { request, _ in try await self.page(request) { try await self.drift($0) } }
        router.post("/ui/action") { request, _ in try await self.action(request) }
        router.get("/ui/events") { request, _ in try self.events(request) }
        router.get("/ui/assets/app.css") { _, _ in Self.asset(DashboardAssets.css, type: "text/css; charset=utf-8") }
        router.get("/ui/assets/app.js") { _, _ in Self.asset(DashboardAssets.javascript, type: "text/javascript; charset=utf-8") }
    }

    /// The routes by path, for the `action` label of the request metrics.
    static let actions: [String: String] = [
        "/ui": "overview", "/ui/login": "login", "/ui/logout": "logout", "/ui/resources": "list", "/ui/resource": "detail",
        "/ui/drift": "drift", "/ui/action": "action", "/ui/events": "events", "/ui/assets/app.css": "asset", "/ui/assets/app.js": "asset",
    ]

    // MARK: Sessions

    /// Who the request's session cookie names, with the cookie; nil without a valid session.
    func session(_ request: Request) -> Session? {
        guard let cookie = request.cookies[Self.cookieName]?.value, let found = key.verifySession(cookie) else { return nil }
        guard !book.isRevoked(found.nonce) else { return nil }
        guard let principal = try? authenticator.principal(accessKey: found.accessKey) else { return nil }
        return Session(principal: principal, cookie: cookie, csrf: key.csrf(for: cookie), nonce: found.nonce, expiry: found.expiry)
    }

    /// A page for a signed-in user; without a session, the login page (303).
    func page(_ request: Request, _ body: (Session) async throws -> Page) async throws -> Response {
        guard let session = session(request) else { return Self.redirect("/ui/login?next=\(Self.percent(request.uri.path + (request.uri.query.map { "?\($0)" } ?? "")))") }
        do {
            return try await body(session).response(session: session)
        } catch let refusal as Refusal {
            return Page(title: refusal.title, status: refusal.status, body: DashboardHTML.error(refusal.message)).response(session: session)
        }
    }

    func loginPage(_ request: Request) async throws -> Response {
        let next = Self.safeNext(request.uri.queryParameters["next"].map(String.init))
        if let token = request.uri.queryParameters["token"].map(String.init) {
            // A one-time link of `stratus dashboard`: valid once, for minutes.
            guard let link = key.verifyLink(token), book.use(link: link.nonce, until: link.expiry) else {
                telemetry?.count(.dashboardSessions, [("result", "refused")])
                return Page(title: "Sign in", status: .unauthorized, body: DashboardHTML.login(next: next, error: "This sign-in link is not valid: it was used already, has expired, or was not made by this server. Run stratus dashboard for a new one.")).response(session: nil)
            }
            let credential = try store.credential(user: link.user)
            return startSession(accessKey: credential.accessKey, next: next)
        }
        if session(request) != nil { return Self.redirect(next) }
        return Page(title: "Sign in", body: DashboardHTML.login(next: next, error: nil)).response(session: nil)
    }

    func login(_ request: Request) async throws -> Response {
        let form = try await Self.form(request)
        let next = Self.safeNext(form["next"])
        do {
            let principal = try authenticator.principal(accessKey: form["accessKey"] ?? "", secretKey: form["secretKey"] ?? "")
            return startSession(accessKey: principal.accessKey, next: next)
        } catch is AuthenticationError {
            telemetry?.count(.dashboardSessions, [("result", "refused")])
            // One answer whatever was wrong: it says nothing of which keys exist.
            return Page(title: "Sign in", status: .unauthorized, body: DashboardHTML.login(next: next, error: "The access key and secret key do not match an enabled user. stratus credentials USER prints them.")).response(session: nil)
        }
    }

    func startSession(accessKey: String, next: String) -> Response {
        telemetry?.count(.dashboardSessions, [("result", "ok")])
        let cookie = key.session(accessKey: accessKey, expiry: Date().addingTimeInterval(Self.sessionLifetime))
        var response = Self.redirect(next)
        response.headers[.setCookie] = "\(Self.cookieName)=\(cookie); Path=/ui; Max-Age=\(Int(Self.sessionLifetime)); HttpOnly; SameSite=Strict"
        return response
    }

    func logout(_ request: Request) async throws -> Response {
        let form = try await Self.form(request)
        guard let session = session(request) else { return Self.redirect("/ui/login") }
        guard key.checkCSRF(form["csrf"] ?? "", session: session.cookie) else { return Self.csrfRefusal(session) }
        book.revoke(session.nonce, until: session.expiry)
        var response = Self.redirect("/ui/login")
        response.headers[.setCookie] = "\(Self.cookieName)=; Path=/ui; Max-Age=0; HttpOnly; SameSite=Strict"
        return response
    }

    static func csrfRefusal(_ session: Session?) -> Response {
        Page(title: "Refused", status: .forbidden, body: DashboardHTML.error("This form's CSRF token is not this session's: the page is stale or the request did not come from this dashboard. Reload the page and try again.")).response(session: session)
    }

    // MARK: Reading

    /// The projects the principal may look at, in order.
    func projects(_ principal: Principal) throws -> [String] {
        if principal.canReadEveryProject { return try store.list(kind: .project).map(\.key.name).sorted() }
        return principal.memberships.keys.sorted()
    }

    func overview(_ session: Session, _ request: Request) throws -> Page {
        let projects = try projects(session.principal)
        let asked = request.uri.queryParameters["project"].map(String.init)
        guard let project = asked ?? projects.first else {
            return Page(title: "Overview", body: DashboardHTML.empty("You are a member of no project, so there is nothing to show. A project manager or cloudadmin adds you to one."))
        }
        guard projects.contains(project) else { throw Refusal.notFound("no project \(project) that you may see") }
        let quotas = try store.quotaUsage(project: project) ?? []
        var health: [CensusRow.Health: Int] = [:]
        var kinds: [String: Int] = [:]
        for row in try store.census() where row.project == project {
            health[row.health, default: 0] += row.count
            kinds[row.kind, default: 0] += row.count
        }
        return Page(title: "Overview of \(project)", body: DashboardHTML.overview(project: project, projects: projects, quotas: quotas, health: health, kinds: kinds))
    }

    func resources(_ session: Session, _ request: Request) throws -> Page {
        let parameters = request.uri.queryParameters
        let kindText = parameters["kind"].map(String.init) ?? "Instance"
        guard let kind = Kind.named(kindText) else { throw Refusal.badRequest("there is no kind \(kindText)") }
        let visible = try projects(session.principal)
        var projects: [String]? = session.principal.canReadEveryProject ? nil : visible
        if let project = parameters["project"].map(String.init), !project.isEmpty {
            guard visible.contains(project) else { throw Refusal.notFound("no project \(project) that you may see") }
            projects = [project]
        }
        var filter = ResourceFilter(kind: kind, projects: projects)
        if let phase = parameters["phase"].map(String.init), !phase.isEmpty { filter.phase = phase }
        if let label = parameters["label"].map(String.init), !label.isEmpty {
            let parts = label.split(separator: "=", maxSplits: 1).map(String.init)
            filter.label = (parts[0], parts.count > 1 ? parts[1] : nil)
        }
        let number = max(1, parameters["page"].flatMap { Int(String($0)) } ?? 1)
        let page = try store.read { try $0.page(filter, offset: (number - 1) * Self.pageSize, limit: Self.pageSize) }
        return Page(title: kind.rawValue + "s", body: DashboardHTML.list(kind: kind, page: page, number: number, pageSize: Self.pageSize, projects: visible, query: parameters))
    }

    func resource(_ session: Session, _ request: Request) async throws -> Page {
        let parameters = request.uri.queryParameters
        guard let kindText = parameters["kind"].map(String.init), let kind = Kind.named(kindText), let name = parameters["name"].map(String.init) else {
            throw Refusal.badRequest("a resource page needs kind and name")
        }
        let key = ResourceKey(kind: kind, project: kind.scope == .cluster ? nil : parameters["project"].map(String.init) ?? "", name: name)
        guard let found = try store.get(key), kind.scope == .cluster || session.principal.canRead(project: key.project) else {
            throw Refusal.notFound("no \(kind.rawValue) \(key.qualifiedName) that you may see")
        }
        let events = try store.events(for: key, limit: 20)
        var console: String?
        if kind == .instance {
            if let id = found.metadata.id { console = try? String(contentsOfFile: "\(dataDirectory)/instances/\(id)/console.log", encoding: .utf8) }
            if console == nil, let node { console = try? await node.console(found) }
        }
        return Page(title: "\(kind.rawValue) \(key.qualifiedName)", body: DashboardHTML.detail(found, events: events, console: console.map { String($0.suffix(16_384)) },
                                                                                    canWrite: session.principal.canWrite(kind, project: key.project), notice: parameters["done"].map(String.init), csrf: session.csrf))
    }

    func drift(_ session: Session) async throws -> Page {
        guard session.principal.isCloudAdmin || session.principal.globalRoles.contains(.itsec) else {
            throw Refusal.forbidden("user \(session.principal.user) may not read drift: that needs the cloudadmin or itsec role")
        }
        var findings: [DriftFinding] = []
        var note: String?
        if let node {
            do { findings = try await node.drift() } catch { note = "\(error)" }
        } else {
            note = "this server runs no hypervisor, so there is nothing to compare"
        }
        return Page(title: "Drift", body: DashboardHTML.drift(findings, note: note))
    }

    // MARK: Actions

    func action(_ request: Request) async throws -> Response {
        let form = try await Self.form(request)
        guard let session = session(request) else { return Self.redirect("/ui/login") }
        guard key.checkCSRF(form["csrf"] ?? "", session: session.cookie) else { return Self.csrfRefusal(session) }
        guard let kind = form["kind"].flatMap(Kind.named), let name = form["name"], let verb = form["action"] else {
            return Page(title: "Refused", status: .badRequest, body: DashboardHTML.error("an action needs kind, name and action")).response(session: session)
        }
        let key = ResourceKey(kind: kind, project: kind.scope == .cluster ? nil : form["project"] ?? "", name: name)
        let principal = session.principal
        do {
            guard let stored = try store.get(key), kind.scope == .cluster || principal.canRead(project: key.project) else {
                throw Refusal.notFound("no \(kind.rawValue) \(key.qualifiedName) that you may see")
            }
            try ResourceAPI.authorizeWrite(principal, key)
            switch verb {
            case "reboot":
                guard kind == .instance else { throw Refusal.badRequest("only instances can be rebooted") }
                guard let node else { throw Refusal.badRequest("this server runs no hypervisor") }
                try await node.reboot(stored)
                try store.recordEvent(key, reason: "Rebooted", message: "reboot requested by \(principal.user) through the dashboard")
            case "stop", "start":
                guard kind == .instance, case .instance(var spec) = stored.resource.spec else { throw Refusal.badRequest("only instances can be stopped and started") }
                guard !stored.isTerminating else { throw Refusal.badRequest("\(key) is being deleted") }
                spec.powerState = verb == "start" ? .running : .stopped
                var resource = stored.resource
                resource.status = nil
                resource.spec = .instance(spec)
                _ = try store.apply([try Admission.document(for: resource)], options: ApplyOptions(applySet: stored.metadata.applySet ?? "", manager: "dashboard:\(principal.user)"))
            case "delete":
                if kind == .keyPair, case .keyPair(let spec) = stored.resource.spec, !principal.canManageKeyPair(owner: spec.user, project: key.project) {
                    throw Refusal.forbidden(principal.keyPairDenial(owner: spec.user, project: key.project, name: key.name))
                }
                _ = try store.delete([key], reason: "deletion requested by \(principal.user) through the dashboard")
                return Self.redirect("/ui/resources?kind=\(kind.rawValue)&project=\(Self.percent(key.project))&done=delete")
            default:
                throw Refusal.badRequest("there is no action \(verb); the dashboard has reboot, stop, start and delete")
            }
            return Self.redirect("/ui/resource?kind=\(kind.rawValue)&project=\(Self.percent(key.project))&name=\(Self.percent(name))&done=\(verb)")
        } catch let refusal as Refusal {
            return Page(title: "Refused", status: refusal.status, body: DashboardHTML.error(refusal.message)).response(session: session)
        } catch let error as APIError where error.kind == "forbidden" {
            return Page(title: "Refused", status: .forbidden, body: DashboardHTML.error(error.message)).response(session: session)
        } catch let error as StoreError {
            return Page(title: "Refused", status: .conflict, body: DashboardHTML.error(error.message)).response(session: session)
        } catch let errors as ManifestErrors {
            return Page(title: "Refused", status: .unprocessableContent, body: DashboardHTML.error(errors.errors.map(\.message).joined(separator: "; "))).response(session: session)
        }
    }

    // MARK: Live events

    /// Server-Sent Events from the change feed: what the session may see, narrowed by the
    /// query (project, kind, name), from `Last-Event-ID` (or now) on. The server reads the feed
    /// every 100 ms; the browser polls nothing.
    func events(_ request: Request) throws -> Response {
        guard let session = session(request) else {
            return Response(status: .unauthorized, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: "sign in first\n")))
        }
        let parameters = request.uri.queryParameters
        let project = parameters["project"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
        let kind = parameters["kind"].map(String.init).flatMap(Kind.named)
        let name = parameters["name"].map(String.init)
        let resume = request.headers[HTTPField.Name("Last-Event-ID")!].flatMap { Int64($0) }
        let start = try resume ?? store.lastEventSeq()
        let store = self.store
        let principal = session.principal
        let expiry = session.expiry
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-store", HTTPField.Name("X-Accel-Buffering")!: "no"],
            body: ResponseBody { writer in
                var cursor = start
                try await writer.write(ByteBuffer(string: "retry: 2000\n: stream of \(principal.user)\n\n"))
                var quiet = ContinuousClock.now
                // Until the session ends, the client goes, or the server shuts down (a stream
                // left open would hold a graceful shutdown for hours).
                while Date() < expiry && !Task.isCancelled && !Task.isShuttingDownGracefully {
                    let events = try store.events(after: cursor, limit: 1000)
                    var text = ""
                    for event in events {
                        cursor = event.seq ?? cursor
                        guard let key = event.key, key.kind.scope == .cluster || principal.canRead(project: key.project) else { continue }
                        if let project, key.project != project { continue }
                        if let kind, key.kind != kind { continue }
                        if let name, key.name != name { continue }
                        let wire = LiveEvent(seq: event.seq ?? 0, time: event.time, kind: event.kind, project: event.project, name: event.name, type: event.type, reason: event.reason, message: event.message,
                                             phase: event.generation == nil ? nil : try? store.get(key)?.displayPhase)
                        text += "id: \(wire.seq)\nevent: change\ndata: \(String(decoding: try encoder.encode(wire), as: UTF8.self))\n\n"
                    }
                    if !text.isEmpty {
                        try await writer.write(ByteBuffer(string: text))
                        quiet = .now
                    } else if ContinuousClock.now - quiet > .seconds(15) {
                        try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))  // proxies and the idle timeout see traffic
                        quiet = .now
                    }
                    if events.count < 1000 { try await Task.sleep(for: .milliseconds(100)) }
                }
                try await writer.finish(nil)
            })
    }

    /// One event as the live feed sends it; `phase` is the resource's phase after a status change.
    struct LiveEvent: Encodable {
        var seq: Int64
        var time, kind, project, name, type, reason, message: String
        var phase: String?
    }

    // MARK: Helpers

    /// The fields of an `application/x-www-form-urlencoded` body (the first of each name).
    static func form(_ request: Request) async throws -> [String: String] {
        var request = request
        let buffer = try await request.collectBody(upTo: formLimit)
        var fields: [String: String] = [:]
        for pair in String(buffer: buffer).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            if let name = parts.first, fields[name] == nil { fields[name] = parts.count > 1 ? parts[1] : "" }
        }
        return fields
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }

    /// Only a path of this dashboard may be where a login goes next (no open redirect).
    static func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/ui"), !next.hasPrefix("//"), !next.contains("\\") else { return "/ui" }
        return next
    }

    static func percent(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~/"))) ?? ""
    }

    static func asset(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type, .cacheControl: "max-age=3600"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// A signed-in browser: who it is, its cookie and the CSRF token of that cookie.
struct Session: Sendable {
    let principal: Principal
    let cookie: String
    let csrf: String
    let nonce: String
    let expiry: Date
}

/// Sessions ended by logout and one-time links used, until they would have expired anyway.
final class SessionBook: Sendable {
    private let state = Mutex<(revoked: [String: Date], used: [String: Date])>(([:], [:]))

    func isRevoked(_ nonce: String) -> Bool { state.withLock { $0.revoked[nonce] != nil } }

    func revoke(_ nonce: String, until expiry: Date) {
        state.withLock { state in
            let now = Date()
            state.revoked = state.revoked.filter { $0.value > now }
            state.revoked[nonce] = expiry
        }
    }

    /// Records a link's use; false when it was used before.
    func use(link nonce: String, until expiry: Date) -> Bool {
        state.withLock { state in
            let now = Date()
            state.used = state.used.filter { $0.value > now }
            guard state.used[nonce] == nil else { return false }
            state.used[nonce] = expiry
            return true
        }
    }
}

/// Why a page is not shown, with the status it is answered with.
struct Refusal: Error {
    let status: HTTPResponse.Status
    let title: String
    let message: String

    static func notFound(_ message: String) -> Refusal { Refusal(status: .notFound, title: "Not found", message: message) }
    static func forbidden(_ message: String) -> Refusal { Refusal(status: .forbidden, title: "Refused", message: message) }
    static func badRequest(_ message: String) -> Refusal { Refusal(status: .badRequest, title: "Refused", message: message) }
}
