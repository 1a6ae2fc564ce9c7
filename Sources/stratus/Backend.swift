import Foundation
import StratusAPI
import StratusAccess
import StratusIdentity
import StratusModel
import StratusStore

/// Where a command's state lives: the local data directory, or a server (`--server`).
///
/// Both give the same answers and raise the same errors, so every command prints the same
/// output and exits with the same code either way.
protocol Backend: Sendable {
    func plan(_ files: FileOptions, options: ApplyOptions, commit: Bool) async throws -> ApplyPlan
    /// Plans (or, with `commit`, applies) files as read before: a saved plan's.
    func plan(sources: [ManifestSource], project: String?, options: ApplyOptions, commit: Bool) async throws -> ApplyPlan
    /// Applies manifest text the command made itself (`cordon`), as `apply -f` would.
    func apply(text: String, name: String, options: ApplyOptions) async throws -> ApplyPlan
    func list(kind: Kind?, project: String?) async throws -> [StoredResource]
    /// The live resources of these projects (nil: of every project the caller may see) made
    /// through the EC2 API (in no apply set), by key, in project then key order.
    func madeThroughAPI(projects: Set<String>?) async throws -> [(key: ResourceKey, id: String?)]
    func lookup(kind: Kind, name: String, project: String?) async throws -> StoredResource
    func describe(kind: Kind, name: String, project: String?) async throws -> (StoredResource, [StoredEvent])
    /// Every resource of `kind` (called `name`, when given) in every project the caller may see, with its events.
    func describeAll(kind: Kind, name: String?) async throws -> [(StoredResource, [StoredEvent])]
    func delete(_ keys: [ResourceKey]) async throws -> [(ResourceKey, Store.DeleteOutcome)]
    func events(after: Int64, limit: Int) async throws -> [StoredEvent]
    func console(name: String, project: String?) async throws -> String
    func reboot(name: String, project: String?) async throws
    func drift() async throws -> [DriftFinding]
    func drain(node: String) async throws -> [DrainOutcome]
    func credentials(user: String, project: String?, rotate: Bool) async throws -> CredentialWire
    /// Nodes' capacity and allocation, and the quota tables of `project` (nil: every project the caller sees).
    func usage(project: String?) async throws -> UsageReport
    /// A one-time sign-in link of the running server's dashboard.
    func dashboardLink(user: String?) async throws -> DashboardLink
}

/// The local data directory.
struct LocalBackend: Backend {
    let store: Store
    let dataDirectory: String

    func plan(_ files: FileOptions, options: ApplyOptions, commit: Bool) async throws -> ApplyPlan {
        let documents = try files.load(cache: store)
        return commit ? try store.apply(documents, options: options) : try store.plan(documents, options: options)
    }

    func apply(text: String, name: String, options: ApplyOptions) async throws -> ApplyPlan {
        try store.apply(try ManifestLoader.load([ManifestSource(name: name, data: Data(text.utf8))]), options: options)
    }

    func plan(sources: [ManifestSource], project: String?, options: ApplyOptions, commit: Bool) async throws -> ApplyPlan {
        let documents = try ManifestLoader.load(sources, defaultProject: project, cache: store, cacheSalt: FileOptions.parserIdentity)
        return commit ? try store.apply(documents, options: options) : try store.plan(documents, options: options)
    }

    func list(kind: Kind?, project: String?) async throws -> [StoredResource] { try store.list(kind: kind, project: project) }

    func madeThroughAPI(projects: Set<String>?) async throws -> [(key: ResourceKey, id: String?)] {
        try store.madeThroughAPI(projects: projects)
    }

    func lookup(kind: Kind, name: String, project: String?) async throws -> StoredResource {
        try store.find(kind: kind, name: name, project: project)
    }

    func describe(kind: Kind, name: String, project: String?) async throws -> (StoredResource, [StoredEvent]) {
        var found = try await lookup(kind: kind, name: name, project: project)
        found.fieldManagers = try store.fieldManagers(found.key)
        return (found, try store.events(for: found.key))
    }

    func describeAll(kind: Kind, name: String?) async throws -> [(StoredResource, [StoredEvent])] {
        try store.list(kind: kind).filter { name.map($0.isCalled) ?? true }.map { found in
            var found = found
            found.fieldManagers = try store.fieldManagers(found.key)
            return (found, try store.events(for: found.key))
        }
    }

    func delete(_ keys: [ResourceKey]) async throws -> [(ResourceKey, Store.DeleteOutcome)] { try store.delete(keys) }

    func events(after: Int64, limit: Int) async throws -> [StoredEvent] { try store.events(after: after, limit: limit) }

    func console(name: String, project: String?) async throws -> String {
        let instance = try await lookup(kind: .instance, name: name, project: project)
        guard let id = instance.metadata.id, let text = try? String(contentsOfFile: "\(dataDirectory)/instances/\(id)/console.log", encoding: .utf8) else {
            throw CLIError("no console log for \(instance.key) under \(dataDirectory) (status: \(instance.displayPhase)): the guest has not started on this node yet, it runs on another node, or the hypervisor keeps no console (test:///)")
        }
        return text
    }

    func reboot(name: String, project: String?) async throws { try await server().reboot(name: name, project: project) }
    func drift() async throws -> [DriftFinding] { try await server().drift() }
    func drain(node: String) async throws -> [DrainOutcome] { try await server().drain(node: node) }
    func dashboardLink(user: String?) async throws -> DashboardLink { try await server().dashboardLink(user: user) }
    func usage(project: String?) async throws -> UsageReport {
        try store.usage(projects: try project.map { [$0] } ?? store.list(kind: .project).map(\.key.name), nodes: true)
    }

    func credentials(user: String, project: String?, rotate: Bool) async throws -> CredentialWire {
        let credential = rotate ? try store.rotateCredential(user: user, project: project ?? "") : try store.credential(user: user, project: project ?? "")
        let info = ServeInfo.running(dataDirectory: dataDirectory)
        return CredentialWire(credential, ec2URL: info?.ec2URL, s3URL: info?.s3URL, region: info?.region)
    }

    /// The server running on this data directory (from `DATA/serve.json`): reboot and drift need
    /// the process that holds the hypervisor connection.
    private func server() throws -> APIClient {
        guard let info = ServeInfo.running(dataDirectory: dataDirectory), let url = info.apiURL.flatMap(URL.init(string:)) else {
            throw CLIError("this needs the `stratus serve` that runs the instances: none is running on \(dataDirectory) (start one, or pass --server URL)")
        }
        // Whoever can read the data directory holds its keys: talk to the server as its administrator.
        let admin = try store.credential(user: Store.rootUser)
        return APIClient(baseURL: url, signer: RequestSigner(accessKey: admin.accessKey, secretKey: admin.secretKey, region: info.region ?? ResourceAPI.defaultRegion))
    }
}

/// A `stratus serve` reached over HTTP.
struct RemoteBackend: Backend {
    let client: APIClient

    func plan(_ files: FileOptions, options: ApplyOptions, commit: Bool) async throws -> ApplyPlan {
        let sources = try ManifestLoader.sources(for: files.files)
        if sources.isEmpty { throw CLIError("no manifests found in \(files.files.joined(separator: ", ")) (*.yaml, *.yml, *.json)") }
        for source in sources where String(validating: source.data, as: UTF8.self) == nil || source.data.contains(0) {
            // The server would say the same; say it here without sending binary data.
            throw ManifestErrors(ManifestLoader.parse(source).1)
        }
        let request = PlanRequest(
            sources: sources.map { WireSource(name: $0.name, text: String(decoding: $0.data, as: UTF8.self)) },
            project: files.project, applySet: options.applySet, prune: options.prune,
            allowMassDelete: options.allowMassDelete, commit: commit, useParseCache: !files.noParseCache
        )
        return try await client.plan(request)
    }

    func plan(sources: [ManifestSource], project: String?, options: ApplyOptions, commit: Bool) async throws -> ApplyPlan {
        var request = PlanRequest(
            sources: sources.map { WireSource(name: $0.name, text: String(decoding: $0.data, as: UTF8.self)) },
            project: project, applySet: options.applySet, prune: options.prune, allowMassDelete: options.allowMassDelete, commit: commit, useParseCache: true
        )
        request.expectVersion = options.expectVersion
        return try await client.plan(request)
    }

    func apply(text: String, name: String, options: ApplyOptions) async throws -> ApplyPlan {
        try await client.plan(PlanRequest(
            sources: [WireSource(name: name, text: text)], project: nil, applySet: options.applySet, prune: false, allowMassDelete: false, commit: true, useParseCache: false
        ))
    }

    func list(kind: Kind?, project: String?) async throws -> [StoredResource] { try await client.list(kind: kind, project: project) }

    func madeThroughAPI(projects: Set<String>?) async throws -> [(key: ResourceKey, id: String?)] {
        func made(in project: String?) async throws -> [(key: ResourceKey, id: String?)] {
            // Without a project the server lists every project the signer may read, and only those.
            try await client.list(kind: nil, project: project)
                .filter { $0.metadata.applySet == nil && ($0.metadata.manager == "api" || $0.metadata.manager?.hasPrefix("api:") == true) && !$0.isTerminating }
                .map { ($0.key, $0.metadata.id) }
                .sorted { ($0.key.project, $0.key) < ($1.key.project, $1.key) }
        }
        guard let projects else { return try await made(in: nil) }
        var found: [(key: ResourceKey, id: String?)] = []
        for project in projects.sorted() { found += try await made(in: project) }
        return found
    }
    func lookup(kind: Kind, name: String, project: String?) async throws -> StoredResource { try await client.resource(kind: kind, name: name, project: project) }
    func describe(kind: Kind, name: String, project: String?) async throws -> (StoredResource, [StoredEvent]) { try await client.describe(kind: kind, name: name, project: project) }
    func describeAll(kind: Kind, name: String?) async throws -> [(StoredResource, [StoredEvent])] { try await client.describeAll(kind: kind, name: name) }
    func delete(_ keys: [ResourceKey]) async throws -> [(ResourceKey, Store.DeleteOutcome)] { try await client.delete(keys) }
    func events(after: Int64, limit: Int) async throws -> [StoredEvent] { try await client.events(after: after, limit: limit) }
    func console(name: String, project: String?) async throws -> String { try await client.console(name: name, project: project) }
    func reboot(name: String, project: String?) async throws { try await client.reboot(name: name, project: project) }
    func drift() async throws -> [DriftFinding] { try await client.drift() }
    func drain(node: String) async throws -> [DrainOutcome] { try await client.drain(node: node) }
    func dashboardLink(user: String?) async throws -> DashboardLink { try await client.dashboardLink(user: user) }
    func usage(project: String?) async throws -> UsageReport { try await client.usage(project: project) }
    func credentials(user: String, project: String?, rotate: Bool) async throws -> CredentialWire {
        try await client.credentials(user: user, project: project, rotate: rotate)
    }
}

