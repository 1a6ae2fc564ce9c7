import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import StratusAccess
import StratusModel
import StratusStore
import StratusTelemetry
import Testing

@testable import StratusAPI

/// The dashboard's and `/metrics`' error paths through the router test client: no session, a
/// forged or stale cookie, a wrong CSRF token, a wrong secret, a used sign-in link, a scrape
/// without its token.
@Suite struct DashboardRouterTests {
    static func app(_ store: Store, directory: String, token: String? = nil) throws -> some ApplicationProtocol {
        try ResourceAPI(store: store, dataDirectory: directory, telemetry: Telemetry(), metricsToken: token).withDashboard()
            .application(host: "127.0.0.1", port: 0, logger: Logger(label: "test")) { _ in }
    }

    static func directory() throws -> String {
        let path = NSTemporaryDirectory() + "stratus-dashboard-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func form(_ fields: [String: String]) -> ByteBuffer {
        ByteBuffer(string: fields.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(separator: "&"))
    }

    static let formHeaders: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]

    /// Signs alice in; returns her session cookie.
    static func signIn(_ client: some TestClientProtocol, _ store: Store, user: String = "alice") async throws -> String {
        let credential = try store.credential(user: user, project: "acme")
        return try await client.execute(uri: "/ui/login", method: .post, headers: formHeaders, body: form(["accessKey": credential.accessKey, "secretKey": credential.secretKey, "next": "/ui"])) { response in
            #expect(response.status == .seeOther && response.headers[.location] == "/ui")
            let cookie = response.headers[.setCookie] ?? ""
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/ui"), "\(cookie)")
            return String(cookie.prefix { $0 != ";" })
        }
    }

    @Test("without a session pages redirect to the sign-in page, the live feed is 401, and an action is not carried out")
    func noSession() async throws {
        let store = try ResourceAPIRouterTests.store()
        try await Self.app(store, directory: try Self.directory()).test(.router) { client in
            for path in ["/ui", "/ui/resources?kind=Instance", "/ui/resource?kind=Instance&project=acme&name=x", "/ui/drift"] {
                try await client.execute(uri: path, method: .get) { response in
                    #expect(response.status == .seeOther && response.headers[.location]?.hasPrefix("/ui/login?next=") == true, "\(path): \(response.status)")
                }
            }
            try await client.execute(uri: "/ui/events", method: .get) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/ui/action", method: .post, headers: Self.formHeaders, body: Self.form(["csrf": "x", "kind": "Image", "project": "acme", "name": "debian", "action": "delete"])) { response in
                #expect(response.status == .seeOther && response.headers[.location] == "/ui/login")
            }
            #expect(try store.get(ResourceKey(kind: .image, project: "acme", name: "debian"))?.isTerminating == false, "nothing was deleted")
            try await client.execute(uri: "/ui", method: .get, headers: [.cookie: "stratus_session=s1.forged.cookie.value.mac"]) { #expect($0.status == .seeOther, "a forged cookie is no session") }
        }
    }

    @Test("a wrong secret is 401 with one message whatever was wrong; a wrong CSRF token is 403; the right one deletes; a reader's action is 403 by role")
    func signInAndActions() async throws {
        let store = try ResourceAPIRouterTests.store()
        try await Self.app(store, directory: try Self.directory()).test(.router) { client in
            let alice = try store.credential(user: "alice", project: "acme")
            var messages: Set<String> = []
            for (key, secret) in [(alice.accessKey, "wrong"), ("AKIANOSUCHKEY", alice.secretKey)] {
                try await client.execute(uri: "/ui/login", method: .post, headers: Self.formHeaders, body: Self.form(["accessKey": key, "secretKey": secret])) { response in
                    #expect(response.status == .unauthorized && response.headers[.setCookie] == nil)
                    messages.insert(String(buffer: response.body).firstMatch(of: /id="error">([^<]*)</)?.1.description ?? "")
                }
            }
            #expect(messages.count == 1, "a wrong secret and an unknown key read the same: \(messages)")

            let cookie = try await Self.signIn(client, store)
            let csrf = try await client.execute(uri: "/ui/resource?kind=Image&project=acme&name=debian", method: .get, headers: [.cookie: cookie]) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentSecurityPolicy]?.contains("default-src 'self'") == true, "a strict CSP")
                return String(buffer: response.body).firstMatch(of: /name="csrf" value="([^"]+)"/)?.1.description ?? ""
            }
            #expect(!csrf.isEmpty)
            let delete = ["kind": "Image", "project": "acme", "name": "debian", "action": "delete"]
            try await client.execute(uri: "/ui/action", method: .post, headers: Self.formHeaders + [.cookie: cookie], body: Self.form(delete.merging(["csrf": "wrong"]) { $1 })) { response in
                #expect(response.status == .forbidden && String(buffer: response.body).contains("CSRF"))
            }
            #expect(try store.get(ResourceKey(kind: .image, project: "acme", name: "debian"))?.isTerminating == false, "a wrong token deletes nothing")
            try await client.execute(uri: "/ui/action", method: .post, headers: Self.formHeaders + [.cookie: cookie], body: Self.form(delete.merging(["csrf": csrf]) { $1 })) { response in
                #expect(response.status == .seeOther && response.headers[.location]?.contains("done=delete") == true)
            }
            #expect(try store.get(ResourceKey(kind: .image, project: "acme", name: "debian"))?.isTerminating != false, "the right token deletes")

            // bob develops in acme: he may read its keys' page but not delete alice's key pair.
            let bob = try await Self.signIn(client, store, user: "bob")
            let bobCSRF = try await client.execute(uri: "/ui", method: .get, headers: [.cookie: bob]) { String(buffer: $0.body).firstMatch(of: /name="csrf" value="([^"]+)"/)?.1.description ?? "" }
            try await client.execute(uri: "/ui/action", method: .post, headers: Self.formHeaders + [.cookie: bob],
                                     body: Self.form(["kind": "KeyPair", "project": "acme", "name": "deploy", "action": "delete", "csrf": bobCSRF])) { response in
                #expect(response.status == .forbidden, "\(String(buffer: response.body).prefix(300))")
            }
            // carol is in zeta: acme's resources are not found for her.
            let carol = try await client.execute(uri: "/ui/login", method: .post, headers: Self.formHeaders,
                                                 body: Self.form(["accessKey": try store.credential(user: "carol", project: "zeta").accessKey, "secretKey": try store.credential(user: "carol", project: "zeta").secretKey])) {
                String(($0.headers[.setCookie] ?? "").prefix { $0 != ";" })
            }
            try await client.execute(uri: "/ui/resource?kind=KeyPair&project=acme&name=deploy", method: .get, headers: [.cookie: carol]) { #expect($0.status == .notFound) }

            // Signing out ends the session; its cookie is refused from then on.
            try await client.execute(uri: "/ui/logout", method: .post, headers: Self.formHeaders + [.cookie: bob], body: Self.form(["csrf": bobCSRF])) { #expect($0.status == .seeOther) }
            try await client.execute(uri: "/ui", method: .get, headers: [.cookie: bob]) { #expect($0.status == .seeOther) }
        }
    }

    @Test("a sign-in link works once, and not after it is used or when forged; next never leaves the dashboard")
    func oneTimeLink() async throws {
        let store = try ResourceAPIRouterTests.store()
        let directory = try Self.directory()
        let key = try DashboardKey.load(dataDirectory: directory)
        let token = key.link(user: "alice", expiry: Date().addingTimeInterval(60))
        try await Self.app(store, directory: directory).test(.router) { client in
            try await client.execute(uri: "/ui/login?token=\(token)&next=//evil.example/", method: .get) { response in
                #expect(response.status == .seeOther && response.headers[.location] == "/ui" && response.headers[.setCookie]?.hasPrefix("stratus_session=s1.") == true)
            }
            try await client.execute(uri: "/ui/login?token=\(token)", method: .get) { #expect($0.status == .unauthorized, "a used link") }
            let expired = key.link(user: "alice", expiry: Date().addingTimeInterval(-1))
            try await client.execute(uri: "/ui/login?token=\(expired)", method: .get) { #expect($0.status == .unauthorized, "an expired link") }
            let other = try DashboardKey.load(dataDirectory: try Self.directory()).link(user: "admin", expiry: Date().addingTimeInterval(60))
            try await client.execute(uri: "/ui/login?token=\(other)", method: .get) { #expect($0.status == .unauthorized, "a link of another server's key") }
        }
    }

    @Test("/metrics needs no signature, and with a token file exactly that bearer token")
    func metricsEndpoint() async throws {
        let store = try ResourceAPIRouterTests.store()
        try await Self.app(store, directory: try Self.directory()).test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok && response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            }
        }
        try await Self.app(store, directory: try Self.directory(), token: "tok").test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get) { #expect($0.status == .unauthorized && $0.headers[.wwwAuthenticate] != nil) }
            try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer to"]) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer tok"]) { response in
                #expect(response.status == .ok && String(buffer: response.body).contains("stratus_api_requests_total{api=\"resource\",action=\"metrics\",code=\"401\"} 2"))
            }
        }
    }
}
