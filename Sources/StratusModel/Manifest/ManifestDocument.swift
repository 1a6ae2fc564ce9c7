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
    /// Positions of the fields later checks may complain about (references, name, project), by path.
    ///
    /// Kept instead of the parsed tree, which would cost far more memory across a large set.
    private var fieldLocations: [String: SourceLocation]

    public var key: ResourceKey { resource.key }

    init(resource: Resource, location: SourceLocation, root: Node?) throws {
        self.resource = resource
        self.location = location
        let specText = try CanonicalJSON.string(resource.spec.body)
        specJSON = specText
        specHash = CanonicalJSON.sha256(Data(specText.utf8))
        labelsJSON = try CanonicalJSON.string(resource.metadata.labels)
        annotationsJSON = try CanonicalJSON.string(resource.metadata.annotations)
        var locations: [String: SourceLocation] = [:]
        if let root {
            let paths = resource.spec.body.references(project: resource.metadata.project).map(\.path)
                + [[.key("metadata"), .key("name")], [.key("metadata"), .key("project")]]
            for path in paths {
                if let mark = root.locate(path) {
                    locations[renderPath(path)] = SourceLocation(file: location.file, line: mark.line, column: mark.column)
                }
            }
        }
        fieldLocations = locations
    }

    /// A document made in code rather than read from a file (the EC2 API, tests).
    public init(resource: Resource, origin: String = "<api>") throws {
        var resource = resource
        resource.spec = resource.spec.defaulted()
        try self.init(resource: resource, location: SourceLocation(file: origin, line: 1, column: 1), root: nil)
    }

    /// The position of a field that references or identity checks name; the document's start otherwise.
    public func location(of path: [PathElement]) -> SourceLocation {
        fieldLocations[renderPath(path)] ?? location
    }
}
