import Foundation
import StratusIdentity
import StratusModel
import StratusStore

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The resource API from the client side: what `stratus --server URL` uses.
///
/// Errors come back as the same Swift errors the local store raises (`ManifestErrors`,
/// `StoreError`), so the CLI prints them the same way and exits with the same codes.
public struct APIClient: Sendable {
    public let baseURL: URL
    /// Signs every request (SigV4); the server refuses unsigned ones.
    public let signer: RequestSigner?

    public init(baseURL: URL, signer: RequestSigner?) {
        self.baseURL = baseURL
        self.signer = signer
    }

    public func plan(_ request: PlanRequest) async throws -> ApplyPlan {
        try await send("POST", "/v1/plan", body: request)
    }

    public func list(kind: Kind?, project: String?) async throws -> [StoredResource] {
        let items: ResourceItems = try await send("GET", "/v1/resources", query: ["kind": kind?.rawValue, "project": project])
        return items.items.map(StoredResource.init(resource:))
    }

    public func resource(kind: Kind, name: String, project: String?) async throws -> StoredResource {
        let resource: Resource = try await send("GET", "/v1/resource", query: ["kind": kind.rawValue, "name": name, "project": project])
        return StoredResource(resource: resource)
    }

    public func describe(kind: Kind, name: String, project: String?) async throws -> (StoredResource, [StoredEvent]) {
        let description: Description = try await send("GET", "/v1/describe", query: ["kind": kind.rawValue, "name": name, "project": project])
        var stored = StoredResource(resource: description.resource)
        stored.fieldManagers = description.fieldManagers
        return (stored, description.events)
    }

    /// Every resource of `kind` (named `name` or with that EC2 id, when given) in every project the signer may read.
    public func describeAll(kind: Kind, name: String?) async throws -> [(StoredResource, [StoredEvent])] {
        let descriptions: Descriptions = try await send("GET", "/v1/describe", query: ["kind": kind.rawValue, "name": name, "allProjects": "true"])
        return descriptions.items.map { item in
            var stored = StoredResource(resource: item.resource)
            stored.fieldManagers = item.fieldManagers
            return (stored, item.events)
        }
    }

    public func delete(_ keys: [ResourceKey]) async throws -> [(ResourceKey, Store.DeleteOutcome)] {
        let outcomes: [DeleteOutcomeWire] = try await send("POST", "/v1/delete", body: DeleteRequest(keys: keys))
        return outcomes.map { ($0.key, Store.DeleteOutcome(rawValue: $0.outcome) ?? .notFound) }
    }

    public func events(after: Int64, limit: Int) async throws -> [StoredEvent] {
        try await send("GET", "/v1/events", query: ["after": String(after), "limit": String(limit)])
    }

    public func console(name: String, project: String?) async throws -> String {
        let data = try await raw("GET", "/v1/console", query: ["kind": "Instance", "name": name, "project": project], body: nil)
        return String(decoding: data, as: UTF8.self)
    }

    public func reboot(name: String, project: String?) async throws {
        _ = try await raw("POST", "/v1/reboot", query: ["kind": "Instance", "name": name, "project": project], body: nil)
    }

    public func drain(node: String) async throws -> [DrainOutcome] {
        try await send("POST", "/v1/drain", query: ["node": node])
    }

    /// Nodes' capacity and allocation, and projects' quota tables (`GET /v1/usage`).
    public func usage(project: String?) async throws -> UsageReport {
        try await send("GET", "/v1/usage", query: ["project": project])
    }

    /// A one-time sign-in link of the dashboard for `user` (nil: the caller), valid for minutes.
    public func dashboardLink(user: String?) async throws -> DashboardLink {
        var link: DashboardLink = try await send("POST", "/v1/dashboard/link", query: ["user": user])
        link.url = baseURL.absoluteString.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + link.path
        return link
    }

    public func drift() async throws -> [DriftFinding] {
        try await send("GET", "/v1/drift")
    }

    /// The user's key (issued on first request), or a new secret for it with `rotate`.
    public func credentials(user: String, project: String?, rotate: Bool) async throws -> CredentialWire {
        try await send("POST", "/v1/credentials", body: CredentialRequest(user: user, project: project, rotate: rotate))
    }

    private struct Empty: Encodable {}

    private func send<T: Decodable>(_ method: String, _ path: String, query: [String: String?] = [:], body: (some Encodable)? = Empty?.none) async throws -> T {
        let data = try await raw(method, path, query: query, body: try body.map { try JSONEncoder().encode($0) })
        return try JSONDecoder().decode(T.self, from: data)
    }

    private func raw(_ method: String, _ path: String, query: [String: String?], body: Data?) async throws -> Data {
        var components = URLComponents(url: baseURL.appendingPathComponent(path), resolvingAgainstBaseURL: false)!
        let items = query.compactMap { key, value in value.map { URLQueryItem(name: key, value: $0) } }
        if !items.isEmpty { components.queryItems = items.sorted { $0.name < $1.name } }
        var request = URLRequest(url: components.url!)
        request.httpMethod = method
        request.timeoutInterval = 300
        if let body {
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let signer {
            for header in signer.headers(method: method, url: components.url!, headers: body == nil ? [] : [("content-type", "application/json")], body: body ?? Data()) {
                request.setValue(header.value, forHTTPHeaderField: header.name)
            }
        }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw APIError(kind: "unreachable", message: "cannot reach the Stratus server at \(baseURL.absoluteString): \(error.localizedDescription); is `stratus serve` running there?")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status) else {
            guard let error = try? JSONDecoder().decode(APIError.self, from: data) else {
                throw APIError(kind: "internal", message: "the server answered \(status): \(String(decoding: data.prefix(500), as: UTF8.self))")
            }
            if error.kind == "unauthorized", signer == nil {
                throw APIError(kind: error.kind, message: error.message + " Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, e.g. eval \"$(stratus credentials USER -p PROJECT)\" where the data directory is.")
            }
            switch error.kind {
            case "manifest": throw ManifestErrors(error.manifestErrors ?? [])
            case "store": throw StoreError.remote(codeName: error.code ?? "conflict", message: error.message)
            default: throw error
            }
        }
        return data
    }
}
