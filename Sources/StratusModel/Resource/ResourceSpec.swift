import Foundation

/// The typed spec of a resource, one case per kind.
public indirect enum ResourceSpec: Sendable, Equatable {  // indirect: plans hold many, mostly unused
    case user(UserSpec)
    case project(ProjectSpec)
    case keyPair(KeyPairSpec)
    case network(NetworkSpec)
    case securityGroup(SecurityGroupSpec)
    case address(AddressSpec)
    case image(ImageSpec)
    case instanceType(InstanceTypeSpec)
    case instance(InstanceSpec)
    case volume(VolumeSpec)
    case snapshot(SnapshotSpec)
    case node(NodeSpec)
    case gitSync(GitSyncSpec)

    /// Wraps a spec body in its case.
    public init(_ body: any SpecBody) {
        switch body {
        case let body as UserSpec: self = .user(body)
        case let body as ProjectSpec: self = .project(body)
        case let body as KeyPairSpec: self = .keyPair(body)
        case let body as NetworkSpec: self = .network(body)
        case let body as SecurityGroupSpec: self = .securityGroup(body)
        case let body as AddressSpec: self = .address(body)
        case let body as ImageSpec: self = .image(body)
        case let body as InstanceTypeSpec: self = .instanceType(body)
        case let body as InstanceSpec: self = .instance(body)
        case let body as VolumeSpec: self = .volume(body)
        case let body as SnapshotSpec: self = .snapshot(body)
        case let body as NodeSpec: self = .node(body)
        case let body as GitSyncSpec: self = .gitSync(body)
        default: preconditionFailure("unknown spec type \(type(of: body))")
        }
    }

    /// The spec type of each kind.
    public static func bodyType(for kind: Kind) -> any SpecBody.Type {
        switch kind {
        case .user: UserSpec.self
        case .project: ProjectSpec.self
        case .keyPair: KeyPairSpec.self
        case .network: NetworkSpec.self
        case .securityGroup: SecurityGroupSpec.self
        case .address: AddressSpec.self
        case .image: ImageSpec.self
        case .instanceType: InstanceTypeSpec.self
        case .instance: InstanceSpec.self
        case .volume: VolumeSpec.self
        case .snapshot: SnapshotSpec.self
        case .node: NodeSpec.self
        case .gitSync: GitSyncSpec.self
        }
    }

    /// The spec as its protocol, for generic work (defaults, validation, encoding).
    public var body: any SpecBody {
        switch self {
        case .user(let body): body
        case .project(let body): body
        case .keyPair(let body): body
        case .network(let body): body
        case .securityGroup(let body): body
        case .address(let body): body
        case .image(let body): body
        case .instanceType(let body): body
        case .instance(let body): body
        case .volume(let body): body
        case .snapshot(let body): body
        case .node(let body): body
        case .gitSync(let body): body
        }
    }

    public var kind: Kind { type(of: body).kind }

    /// The spec with every default filled in.
    public func defaulted() -> ResourceSpec {
        var body = self.body
        body.applyDefaults()
        return ResourceSpec(body)
    }

    /// The canonical JSON text of the spec (sorted keys): what is stored and hashed.
    public func canonicalJSON() throws -> Data { try CanonicalJSON.encode(body) }

    /// Decodes a spec of the given kind from canonical JSON (as the store holds it).
    public static func fromJSON(_ data: Data, kind: Kind) throws -> ResourceSpec {
        ResourceSpec(try JSONDecoder().decode(bodyType(for: kind), from: data))
    }
}
