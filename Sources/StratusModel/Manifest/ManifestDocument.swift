import Foundation
import Yams

/// One resource read from a manifest, with what is needed to point at its fields later.
public struct ManifestDocument: Sendable {
    /// The resource with defaults applied; status and read-only metadata dropped.
    public var resource: Resource
    /// Where the document starts.
    public var location: SourceLocation
    /// The spec in canonical JSON, as the store keeps it.
    public var specJSON: String
    /// SHA-256 of `specJSON`: equal hashes mean equal specs.
    public var specHash: String
    /// Labels and annotations in canonical JSON.
    public var labelsJSON: String
    public var annotationsJSON: String
    /// The parsed tree, to find the position of a field named by a later check (references).
    let root: NodeBox

    public var key: ResourceKey { resource.key }

    init(resource: Resource, location: SourceLocation, root: NodeBox) throws {
        self.resource = resource
        self.location = location
        self.root = root
        let spec = try resource.spec.canonicalJSON()
        specJSON = String(decoding: spec, as: UTF8.self)
        specHash = CanonicalJSON.sha256(spec)
        labelsJSON = try CanonicalJSON.string(resource.metadata.labels)
        annotationsJSON = try CanonicalJSON.string(resource.metadata.annotations)
    }

    /// A document made in code rather than read from a file (the EC2 API, tests).
    public init(resource: Resource, origin: String = "<api>") throws {
        var resource = resource
        resource.spec = resource.spec.defaulted()
        try self.init(resource: resource, location: SourceLocation(file: origin, line: 1, column: 1), root: NodeBox(node: Node("")))
    }

    /// The position of a field, falling back to its nearest parent that exists.
    public func location(of path: [PathElement]) -> SourceLocation {
        guard let mark = root.node.locate(path) else { return location }
        return SourceLocation(file: location.file, line: mark.line, column: mark.column)
    }
}

/// A parsed YAML tree; Yams nodes are immutable values once built.
struct NodeBox: @unchecked Sendable {  // Node holds weak anchor refs that are never mutated after parsing.
    let node: Node
}
