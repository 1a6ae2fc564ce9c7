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
    /// Apply only if the desired state is still at this version (a saved plan's); else 409, nothing changed.
    public var expectVersion: Int64?

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
    /// Who set each field last: field path → manager (`*`: every field not named).
    public var fieldManagers: [String: String]?
}

/// `GET /v1/describe?allProjects=true`: every matching resource of the projects the signer may read, with its events.
public struct Descriptions: Codable, Sendable {
    public var items: [Description]
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

/// `POST /v1/credentials`: issue (or rotate) a user's key.
public struct CredentialRequest: Codable, Sendable {
    public var user: String
    public var project: String?
    public var rotate: Bool

    public init(user: String, project: String?, rotate: Bool) {
        self.user = user
        self.project = project
        self.rotate = rotate
    }
}

/// An access key and its secret, as `stratus credentials` prints them.
public struct CredentialWire: Codable, Sendable, Equatable {
    public var accessKey: String
    public var secretKey: String
    public var user: String
    public var project: String?
    /// The endpoints the server serves (EC2, S3), for EC2_URL and S3_URL.
    public var ec2URL: String?
    public var s3URL: String?
    /// The region to sign for (AWS_DEFAULT_REGION); nil when no server runs (then `nova`).
    public var region: String?

    public init(_ credential: Credential, ec2URL: String?, s3URL: String?, region: String? = nil) {
        accessKey = credential.accessKey
        secretKey = credential.secretKey
        user = credential.user
        project = credential.project.isEmpty ? nil : credential.project
        self.ec2URL = ec2URL
        self.s3URL = s3URL
        self.region = region
    }
}

/// A one-time sign-in link of the dashboard (`POST /v1/dashboard/link`).
public struct DashboardLink: Codable, Sendable {
    public var user: String
    /// `/ui/login?token=…`, on the API's port.
    public var path: String
    public var expires: String
    /// The whole link, as the client reached the server; filled in by `APIClient`.
    public var url: String?
}
