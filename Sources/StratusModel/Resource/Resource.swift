import Foundation

/// A resource: the Kubernetes-style envelope around a typed spec and the observed status.
public struct Resource: Sendable, Equatable, Codable {
    /// The only API version so far.
    public static let apiVersion = "stratus/v1"

    public var metadata: ObjectMeta
    public var spec: ResourceSpec
    public var status: ResourceStatus?

    public init(metadata: ObjectMeta, spec: ResourceSpec, status: ResourceStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    public var kind: Kind { spec.kind }

    public var key: ResourceKey { ResourceKey(kind: kind, project: metadata.project, name: metadata.name) }

    private enum CodingKeys: String, CodingKey {
        case apiVersion, kind, metadata, spec, status
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let kindName = try container.decode(String.self, forKey: .kind)
        guard let kind = Kind(rawValue: kindName) else {
            throw DecodingError.dataCorruptedError(forKey: .kind, in: container, debugDescription: "unknown kind \(kindName)")
        }
        metadata = try container.decode(ObjectMeta.self, forKey: .metadata)
        let body = try container.decode(JSONValue.self, forKey: .spec)
        spec = try ResourceSpec.fromJSON(CanonicalJSON.encode(body), kind: kind)
        status = try container.decodeIfPresent(ResourceStatus.self, forKey: .status)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Self.apiVersion, forKey: .apiVersion)
        try container.encode(kind.rawValue, forKey: .kind)
        try container.encode(metadata, forKey: .metadata)
        try container.encode(spec.body, forKey: .spec)
        try container.encodeIfPresent(status, forKey: .status)
    }
}
