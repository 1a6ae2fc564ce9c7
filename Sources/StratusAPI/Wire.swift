import StratusModel
import StratusStore

/// `POST /v1/plan`: manifests to plan (and, with `commit`, to apply).
public struct PlanRequest: Codable, Sendable {
    /// The files as the client read them, so errors name the client's paths and lines.
    public var sources: [WireSource]
    public var project: String?
    public var applySet: String
    public var prune: Bool
    public var allowMassDelete: Bool
    /// Apply the plan (false: dry run or diff).
    public var commit: Bool
    public var useParseCache: Bool

    public init(sources: [WireSource], project: String?, applySet: String, prune: Bool, allowMassDelete: Bool, commit: Bool, useParseCache: Bool) {
        self.sources = sources
        self.project = project
        self.applySet = applySet
        self.prune = prune
        self.allowMassDelete = allowMassDelete
        self.commit = commit
        self.useParseCache = useParseCache
    }
}

/// One manifest file in a request.
public struct WireSource: Codable, Sendable {
    public var name: String
    public var text: String

    public init(name: String, text: String) {
        self.name = name
        self.text = text
    }
}

/// `POST /v1/delete`.
public struct DeleteRequest: Codable, Sendable {
    public var keys: [ResourceKey]
    public init(keys: [ResourceKey]) { self.keys = keys }
}

/// One outcome of a delete.
public struct DeleteOutcomeWire: Codable, Sendable {
    public var key: ResourceKey
    public var outcome: String
}

/// `GET /v1/describe`: a resource and its recent events.
public struct Description: Codable, Sendable {
    public var resource: Resource
    public var events: [StoredEvent]
}

/// Every error body: what kind of error, its message, and the manifest errors when there are several.
public struct APIError: Codable, Sendable, Error {
    /// `manifest`, `store`, `notFound`, `badRequest`, `internal`.
    public var kind: String
    public var message: String
    public var code: String?
    public var manifestErrors: [ManifestError]?

    public init(kind: String, message: String, code: String? = nil, manifestErrors: [ManifestError]? = nil) {
        self.kind = kind
        self.message = message
        self.code = code
        self.manifestErrors = manifestErrors
    }
}

/// What the server's node can do beyond the store: used for reboot and drift.
public protocol NodeOperations: Sendable {
    func reboot(_ instance: StoredResource) async throws
    func drift() async throws -> [DriftFinding]
}
