/// The identity of a resource: its kind, project (empty for cluster-scoped kinds) and name.
public struct ResourceKey: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public var kind: Kind
    public var project: String
    public var name: String

    public init(kind: Kind, project: String?, name: String) {
        self.kind = kind
        self.project = kind.scope == .cluster ? "" : (project ?? "")
        self.name = name
    }

    /// `Instance acme/web-1`, or `InstanceType m1.small` for cluster-scoped kinds.
    public var description: String { "\(kind.rawValue) \(qualifiedName)" }

    /// `acme/web-1`, or `m1.small` for cluster-scoped kinds.
    public var qualifiedName: String { project.isEmpty ? name : "\(project)/\(name)" }

    public static func < (lhs: ResourceKey, rhs: ResourceKey) -> Bool {
        (lhs.kind, lhs.project, lhs.name) < (rhs.kind, rhs.project, rhs.name)
    }
}
