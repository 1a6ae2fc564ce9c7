import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import StratusIdentity
import StratusModel
import StratusStore
import StratusTestSupport
import Testing

@testable import StratusAPI

/// The resource API's handlers through Hummingbird's router test client: no socket, every
/// error path answered with the status and JSON body the CLI turns back into its errors.
@Suite struct ResourceAPIRouterTests {
    /// A store with alice (sysadmin of acme), bob (developer of acme) and carol (sysadmin of zeta).
    static func store() throws -> Store {
        let store = try Store(writer: DatabaseQueue())
        let text = """
            apiVersion: stratus/v1
            kind: User
            metadata: {name: alice}
            spec: {projects: [{project: acme, roles: [sysadmin]}]}
            ---
            apiVersion: stratus/v1
            kind: User
            metadata: {name: bob}
            spec: {projects: [{project: acme, roles: [developer]}]}
            ---
            apiVersion: stratus/v1
            kind: User
            metadata: {name: carol}
            spec: {projects: [{project: zeta, roles: [sysadmin]}]}
            ---
            apiVersion: stratus/v1
            kind: Project
            metadata: {name: acme}
            spec: {manager: alice, quotas: {instances: 1}}
            ---
            apiVersion: stratus/v1
            kind: Project
            metadata: {name: zeta}
            spec: {manager: carol}
            ---
            apiVersion: stratus/v1
            kind: Image
            metadata: {name: debian, project: acme}
            spec: {source: /images/debian.qcow2}
            ---
            apiVersion: stratus/v1
            kind: KeyPair
            metadata: {name: deploy, project: acme}
            spec: {user: alice, publicKey: \(Self.aliceKey)}
            """
        try store.apply(try ManifestLoader.load([ManifestSource(name: "seed.yaml", data: Data(text.utf8))]), options: ApplyOptions(applySet: "seed"))
        return store
    }

    static let aliceKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZ2Yk1cVpgZVDSkqMJYmfb0zI6D/6s8vGN0wVxyjG2k alice@laptop"
    static let bobKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHr4pNqbc9RQX1t7fXwQ2Uo7vZpl0sYl8o3m1G8V8bHk bob@laptop"

    static func app(_ store: Store, maxBodyBytes: Int = 256 << 20) -> some ApplicationProtocol {
        ResourceAPI(store: store, dataDirectory: NSTemporaryDirectory(), maxBodyBytes: maxBodyBytes).application(host: "127.0.0.1", port: 0, logger: Logger(label: "test")) { _ in }
    }

    /// Headers of a request signed as `user` (nil: unsigned).
    static func headers(_ store: Store, as user: String?, method: String, path: String, body: Data = Data()) throws -> HTTPFields {
        var fields = HTTPFields()  // the router test client's authority is localhost, which the signature covers
        if !body.isEmpty { fields[.contentType] = "application/json" }
        guard let user else { return fields }
        let credential = try store.credential(user: user)
        let signer = RequestSigner(accessKey: credential.accessKey, secretKey: credential.secretKey)
        let extra: [(name: String, value: String)] = body.isEmpty ? [] : [("content-type", "application/json")]
        for header in signer.headers(method: method, url: URL(string: "http://localhost\(path)")!, headers: extra, body: body) {
            fields[HTTPField.Name(header.name)!] = header.value
        }
        return fields
    }

    /// A plan request body for manifest text.
    static func plan(_ text: String, commit: Bool) throws -> Data {
        try JSONEncoder().encode(PlanRequest(sources: [WireSource(name: "web.yaml", text: text)], project: nil, applySet: "web", prune: false, allowMassDelete: false, commit: commit, useParseCache: false))
    }

    static func error(_ buffer: ByteBuffer) throws -> APIError { try JSONDecoder().decode(APIError.self, from: Data(buffer.readableBytesView)) }

    @Test("healthz needs no signature; everything else refuses an unsigned request with what to do")
    func unsigned() async throws {
        let store = try Self.store()
        try await Self.app(store).test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok && String(buffer: response.body) == "ok\n")
            }
            try await client.execute(uri: "/v1/resources?kind=Instance", method: .get, headers: try Self.headers(store, as: nil, method: "GET", path: "/v1/resources")) { response in
                #expect(response.status == .unauthorized)
                let error = try Self.error(response.body)
                #expect(error.kind == "unauthorized" && !error.message.isEmpty)
            }
        }
    }

    @Test("an unsigned or unknown-key request is refused before its body is read; a signed one over the limit is 413")
    func bodyLimitAfterSignature() async throws {
        let store = try Self.store()
        let big = try Self.plan(String(repeating: "# padding\n", count: 200_000), commit: false)  // ~2 MB
        try await Self.app(store, maxBodyBytes: 1 << 20).test(.router) { client in
            // Over the limit, yet answered 401: the signature check came first.
            try await client.execute(uri: "/v1/plan", method: .post, headers: try Self.headers(store, as: nil, method: "POST", path: "/v1/plan", body: big), body: ByteBuffer(bytes: big)) { response in
                #expect(response.status == .unauthorized)
            }
            var forged = try Self.headers(store, as: "alice", method: "POST", path: "/v1/plan", body: big)
            forged[.authorization] = forged[.authorization]!.replacingOccurrences(of: "Credential=", with: "Credential=AKNOBODY")
            let unknown = forged
            try await client.execute(uri: "/v1/plan", method: .post, headers: unknown, body: ByteBuffer(bytes: big)) { response in
                #expect(response.status == .unauthorized)
                let error = try Self.error(response.body)
                #expect(error.message.contains("does not exist"), "\(error.message)")
            }
            try await client.execute(uri: "/v1/plan", method: .post, headers: try Self.headers(store, as: "alice", method: "POST", path: "/v1/plan", body: big), body: ByteBuffer(bytes: big)) { response in
                #expect(response.status == .contentTooLarge)
                let error = try Self.error(response.body)
                #expect(error.message.contains("larger than this server accepts (1 MB"), "\(error.message)")
            }
        }
    }

    @Test("random but well-signed requests to every route never get a 5xx", arguments: [UInt64(7), 20261201])
    func fuzz(seed: UInt64) async throws {
        let store = try Self.store()
        var generator = SplitMix64(seed: seed)
        let words = ["Instance", "Image", "KeyPair", "instances", "Nope", "", "acme", "zeta", "debian", "deploy", "web-1", "i-00000000", "%00", "-1", "0", "99999999999999999999", "../x", String(repeating: "z", count: 300)]
        let manifests = [
            "apiVersion: stratus/v1\nkind: Instance\nmetadata: {name: web-1, project: acme}\nspec: {image: debian, instanceType: m1.tiny}\n",
            "apiVersion: stratus/v1\nkind: Volume\nmetadata: {name: v, project: acme}\nspec: {sizeGB: -5}\n", "{{{{", "---\n- 1\n- [", "", "kind: Project\n",
            "apiVersion: stratus/v1\nkind: KeyPair\nmetadata: {name: deploy, project: acme}\nspec: {user: bob, publicKey: x}\n",
        ]
        var requests: [(method: HTTPRequest.Method, path: String, body: Data, user: String)] = []
        for _ in 0..<600 {
            func word() -> String { words.randomElement(using: &generator)!.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "" }
            let user = ["alice", "bob", "carol", Store.rootUser].randomElement(using: &generator)!
            switch Int.random(in: 0..<9, using: &generator) {
            case 0: requests.append((.get, "/v1/resources?kind=\(word())&project=\(word())", Data(), user))
            case 1: requests.append((.get, "/v1/resource?kind=\(word())&name=\(word())&project=\(word())", Data(), user))
            case 2: requests.append((.get, "/v1/describe?kind=\(word())&name=\(word())", Data(), user))
            case 3: requests.append((.get, "/v1/events?after=\(word())&limit=\(word())", Data(), user))
            case 4: requests.append((.get, "/v1/console?kind=Instance&name=\(word())&project=acme", Data(), user))
            case 5:
                let body = try Self.plan(manifests.randomElement(using: &generator)!, commit: Bool.random(using: &generator))
                requests.append((.post, "/v1/plan", Bool.random(using: &generator) ? body : Data(body.prefix(Int.random(in: 0..<body.count, using: &generator))), user))
            case 6: requests.append((.post, "/v1/delete", Data(#"{"keys":[{"kind":"\#(word())","project":"\#(word())","name":"\#(word())"}]}"#.utf8), user))
            case 7: requests.append((.post, "/v1/reboot?kind=Instance&name=\(word())&project=acme", Data(), user))
            default: requests.append((.post, "/v1/credentials", Data(#"{"user":"\#(word())","rotate":false}"#.utf8), user))
            }
        }
        let planned = requests
        let (fives, answered) = try await Self.app(store).test(.router) { client in
            var fives: [String] = []
            var answered: [Int: Int] = [:]
            for request in planned {
                var headers = try Self.headers(store, as: request.user, method: request.method.rawValue, path: request.path, body: request.body)
                if request.body.isEmpty { headers[.contentType] = nil }
                let (code, bad) = try await client.execute(uri: request.path, method: request.method, headers: headers, body: ByteBuffer(bytes: request.body)) { response -> (Int, String?) in
                    (response.status.code / 100, response.status.code >= 500 ? "\(response.status.code) \(request.method) \(request.path): \(String(buffer: response.body).prefix(300))" : nil)
                }
                answered[code, default: 0] += 1
                if let bad { fives.append(bad) }
            }
            return (fives, answered)
        }
        #expect(answered[2, default: 0] > 30 && answered[4, default: 0] > 30, "the requests reach both answers and refusals (seed \(seed): \(answered))")
        #expect(fives.isEmpty, "seed \(seed): \(fives.count) answers were 5xx, e.g. \(fives.prefix(3))")
    }

    @Test("a tampered signature is refused with 401, naming the signature")
    func badSignature() async throws {
        let store = try Self.store()
        var signed = try Self.headers(store, as: "alice", method: "GET", path: "/v1/whoami")
        signed[.authorization] = signed[.authorization]!.replacingOccurrences(of: "Signature=", with: "Signature=0")
        let headers = signed
        try await Self.app(store).test(.router) { client in
            try await client.execute(uri: "/v1/whoami", method: .get, headers: headers) { response in
                #expect(response.status == .unauthorized)
                let error = try Self.error(response.body)
                #expect(error.code == "AuthFailure" && error.message.lowercased().contains("signature"), "\(String(buffer: response.body))")
            }
        }
    }

    @Test("a request signed for the EC2 service is refused: a signature cannot be replayed across APIs")
    func scope() async throws {
        let store = try Self.store()
        let credential = try store.credential(user: "alice")
        var headers = HTTPFields()
        for header in RequestSigner(accessKey: credential.accessKey, secretKey: credential.secretKey, service: "ec2").headers(method: "GET", url: URL(string: "http://localhost/v1/whoami")!) {
            headers[HTTPField.Name(header.name)!] = header.value
        }
        let signed = headers
        try await Self.app(store).test(.router) { client in
            try await client.execute(uri: "/v1/whoami", method: .get, headers: signed) { response in
                #expect(response.status == .unauthorized)
                let error = try Self.error(response.body)
                #expect(error.message.contains("signed for service \"ec2\""), "\(error.message)")
            }
        }
    }

    @Test("whoami names the signer and their roles")
    func whoami() async throws {
        let store = try Self.store()
        try await Self.app(store).test(.router) { client in
            try await client.execute(uri: "/v1/whoami", method: .get, headers: try Self.headers(store, as: "bob", method: "GET", path: "/v1/whoami")) { response in
                #expect(response.status == .ok)
                let body = String(buffer: response.body)
                #expect(body.contains("\"user\":\"bob\"") && body.contains("\"acme\":[\"developer\"]"), "\(body)")
            }
        }
    }

    @Test("a developer's plan that writes a security group is 403, and nothing is written (authorized in the apply's transaction)")
    func wrongRole() async throws {
        let store = try Self.store()
        let body = try Self.plan("apiVersion: stratus/v1\nkind: SecurityGroup\nmetadata: {name: web, project: acme}\nspec: {}\n", commit: true)
        try await Self.app(store).test(.router) { client in
            try await client.execute(uri: "/v1/plan", method: .post, headers: try Self.headers(store, as: "bob", method: "POST", path: "/v1/plan", body: body), body: ByteBuffer(bytes: body)) { response in
                #expect(response.status == .forbidden)
                let error = try Self.error(response.body)
                #expect(error.message.contains("bob"), "\(error.message)")
            }
        }
        #expect(try store.get(ResourceKey(kind: .securityGroup, project: "acme", name: "web")) == nil)
    }

    @Test("a key pair belongs to its user: a developer may not replace, delete or plant one in another's name")
    func keyPairOwnership() async throws {
        let store = try Self.store()
        @Sendable func keyPair(_ name: String, user: String?) -> String {
            "apiVersion: stratus/v1\nkind: KeyPair\nmetadata: {name: \(name), project: acme}\nspec: {\(user.map { "user: \($0), " } ?? "")publicKey: \(Self.bobKey)}\n"
        }
        let refused: [(String, String)] = [
            (keyPair("deploy", user: "alice"), "belongs to alice"),  // replace alice's key with bob's
            (keyPair("deploy", user: "bob"), "belongs to alice"),  // take it over
            (keyPair("planted", user: "alice"), "belongs to alice"),  // plant one in alice's name
            (keyPair("planted", user: nil), "set spec.user: bob"),  // unowned means the manager's
        ]
        try await Self.app(store).test(.router) { client in
            for (manifest, expected) in refused {
                let body = try Self.plan(manifest, commit: true)
                try await client.execute(uri: "/v1/plan", method: .post, headers: try Self.headers(store, as: "bob", method: "POST", path: "/v1/plan", body: body), body: ByteBuffer(bytes: body)) { response in
                    #expect(response.status == .forbidden, "\(manifest)")
                    let error = try Self.error(response.body)
                    #expect(error.message.contains(expected), "\(error.message)")
                }
            }
            let own = try Self.plan(keyPair("bobs", user: "bob"), commit: true)
            try await client.execute(uri: "/v1/plan", method: .post, headers: try Self.headers(store, as: "bob", method: "POST", path: "/v1/plan", body: own), body: ByteBuffer(bytes: own)) { response in
                #expect(response.status == .ok, "bob may keep his own key: \(String(buffer: response.body))")
            }
            let delete = try JSONEncoder().encode(DeleteRequest(keys: [ResourceKey(kind: .keyPair, project: "acme", name: "deploy")]))
            try await client.execute(uri: "/v1/delete", method: .post, headers: try Self.headers(store, as: "bob", method: "POST", path: "/v1/delete", body: delete), body: ByteBuffer(bytes: delete)) { response in
                #expect(response.status == .forbidden)
            }
            try await client.execute(uri: "/v1/delete", method: .post, headers: try Self.headers(store, as: "alice", method: "POST", path: "/v1/delete", body: delete), body: ByteBuffer(bytes: delete)) { response in
                #expect(response.status == .ok, "its owner may delete it")
            }
        }
        #expect(try store.get(ResourceKey(kind: .keyPair, project: "acme", name: "planted")) == nil)
        let events = try store.events(for: ResourceKey(kind: .keyPair, project: "acme", name: "deploy"))
        #expect(events.contains { $0.message.contains("requested by alice") }, "the log names who deleted it: \(events.map(\.message))")
    }

    @Test("a plan with a bad manifest is 422 with each error's position; over quota carries the EC2 code")
    func manifestErrors() async throws {
        let store = try Self.store()
        let broken = try Self.plan("apiVersion: stratus/v1\nkind: Volume\nmetadata: {name: v, project: acme}\nspec: {sizeGB: ten}\n", commit: false)
        let tooMany = try Self.plan((1...2).map { "apiVersion: stratus/v1\nkind: Instance\nmetadata: {name: web-\($0), project: acme}\nspec: {image: debian, instanceType: m1.tiny}\n" }.joined(separator: "---\n"), commit: true)
        try await Self.app(store).test(.router) { client in
            try await client.execute(uri: "/v1/plan", method: .post, headers: try Self.headers(store, as: "alice", method: "POST", path: "/v1/plan", body: broken), body: ByteBuffer(bytes: broken)) { response in
                #expect(response.status == .unprocessableContent)
                let error = try #require(try Self.error(response.body).manifestErrors?.first)
                #expect(error.location == SourceLocation(file: "web.yaml", line: 4, column: 16) && error.path == "spec.sizeGB")
            }
            try await client.execute(uri: "/v1/plan", method: .post, headers: try Self.headers(store, as: "alice", method: "POST", path: "/v1/plan", body: tooMany), body: ByteBuffer(bytes: tooMany)) { response in
                #expect(response.status == .unprocessableContent)
                let error = try #require(try Self.error(response.body).manifestErrors?.first)
                #expect(error.code == "InstanceLimitExceeded" && error.location?.line == 8, "\(error)")
            }
        }
        #expect(try store.list(kind: .instance).isEmpty)
    }

    @Test("another project's resources are not found; an unknown kind is a bad request")
    func isolation() async throws {
        let store = try Self.store()
        try await Self.app(store).test(.router) { client in
            let path = "/v1/resource?kind=Image&name=debian&project=acme"
            try await client.execute(uri: path, method: .get, headers: try Self.headers(store, as: "carol", method: "GET", path: path)) { response in
                #expect(response.status == .notFound)
            }
            try await client.execute(uri: path, method: .get, headers: try Self.headers(store, as: "bob", method: "GET", path: path)) { response in
                #expect(response.status == .ok)
            }
            let listing = "/v1/resources?kind=Imagez"
            try await client.execute(uri: listing, method: .get, headers: try Self.headers(store, as: "alice", method: "GET", path: listing)) { response in
                let error = try Self.error(response.body)
                #expect(response.status == .badRequest && error.message == "unknown kind \"Imagez\"")
            }
        }
    }

    @Test("a lookup never names another project's resources: no hint from it, no ambiguity across it")
    func lookupHidesOtherProjects() async throws {
        let store = try Self.store()
        let zeta = "apiVersion: stratus/v1\nkind: Image\nmetadata: {name: debian, project: zeta}\nspec: {source: /images/debian.qcow2}\n"
        try store.apply(try ManifestLoader.load([ManifestSource(name: "zeta.yaml", data: Data(zeta.utf8))]), options: ApplyOptions(applySet: "zeta"))
        try await Self.app(store).test(.router) { client in
            func get(_ path: String, as user: String, _ check: @escaping @Sendable (TestResponse) throws -> Void) async throws {
                try await client.execute(uri: path, method: .get, headers: try Self.headers(store, as: user, method: "GET", path: path)) { try check($0) }
            }
            try await get("/v1/resource?kind=Image&name=debia&project=acme", as: "carol") { response in
                let error = try Self.error(response.body)
                #expect(response.status == .notFound && error.message == "Image acme/debia not found", "\(error.message)")
            }
            try await get("/v1/resource?kind=Image&name=debia&project=acme", as: "bob") { response in
                let error = try Self.error(response.body)
                #expect(error.message.contains("did you mean \"debian\""), "a member gets the hint: \(error.message)")
            }
            try await get("/v1/resource?kind=Image&name=debian", as: "carol") { response in
                #expect(response.status == .ok && String(buffer: response.body).contains("\"project\":\"zeta\""), "\(String(buffer: response.body))")
            }
            try await get("/v1/resource?kind=KeyPair&name=deploy", as: "carol") { response in
                let error = try Self.error(response.body)
                #expect(response.status == .notFound && error.message == "KeyPair deploy not found in any project", "\(error.message)")
            }
            try await get("/v1/resource?kind=Image&name=debian", as: Store.rootUser) { response in
                let error = try Self.error(response.body)
                #expect(response.status == .conflict && error.message.contains("exists in projects acme, zeta"), "\(error.message)")
            }
        }
    }

    @Test("describe with allProjects answers every match in the projects the signer may read, and refuses a project beside it")
    func describeAllProjects() async throws {
        let store = try Self.store()
        let zeta = "apiVersion: stratus/v1\nkind: Image\nmetadata: {name: debian, project: zeta}\nspec: {source: /images/debian.qcow2}\n"
        try store.apply(try ManifestLoader.load([ManifestSource(name: "zeta.yaml", data: Data(zeta.utf8))]), options: ApplyOptions(applySet: "zeta"))
        try await Self.app(store).test(.router) { client in
            func projects(_ path: String, as user: String) async throws -> [String?] {
                try await client.execute(uri: path, method: .get, headers: try Self.headers(store, as: user, method: "GET", path: path)) { response in
                    #expect(response.status == .ok, "\(String(buffer: response.body))")
                    let body = try JSONDecoder().decode(Descriptions.self, from: Data(response.body.readableBytesView))
                    #expect(body.items.allSatisfy { !$0.events.isEmpty }, "each with its events")
                    return body.items.map(\.resource.metadata.project)
                }
            }
            #expect(try await projects("/v1/describe?kind=Image&name=debian&allProjects=true", as: Store.rootUser) == ["acme", "zeta"])
            #expect(try await projects("/v1/describe?kind=Image&name=debian&allProjects=true", as: "carol") == ["zeta"])
            #expect(try await projects("/v1/describe?kind=Image&allProjects=true", as: "bob") == ["acme"])
            #expect(try await projects("/v1/describe?kind=Image&name=nope&allProjects=true", as: "bob") == [])
            for path in ["/v1/describe?kind=Image&name=debian&allProjects=true&project=acme", "/v1/describe?kind=Image&allProjects=yes", "/v1/describe?allProjects=true"] {
                try await client.execute(uri: path, method: .get, headers: try Self.headers(store, as: "bob", method: "GET", path: path)) { response in
                    #expect(response.status == .badRequest, "\(path): \(String(buffer: response.body))")
                }
            }
        }
    }

    @Test("drift needs cloudadmin or itsec, and a server with a hypervisor")
    func drift() async throws {
        let store = try Self.store()
        try await Self.app(store).test(.router) { client in
            try await client.execute(uri: "/v1/drift", method: .get, headers: try Self.headers(store, as: "alice", method: "GET", path: "/v1/drift")) { response in
                #expect(response.status == .forbidden)
            }
            try await client.execute(uri: "/v1/drift", method: .get, headers: try Self.headers(store, as: Store.rootUser, method: "GET", path: "/v1/drift")) { response in
                let error = try Self.error(response.body)
                #expect(response.status == .badRequest && error.message == "this server runs no hypervisor")
            }
        }
    }
}
