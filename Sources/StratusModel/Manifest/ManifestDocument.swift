import Foundation
import Synchronization
import Yams

/// One resource read from a manifest: its identity, canonical forms, references and field positions.
///
/// The typed resource is available through `resource`; a document restored from the manifest
/// cache decodes it from `specJSON` only when something asks (a changed resource), which is
/// what lets an unchanged set be compared without parsing it again.
public struct ManifestDocument: Sendable {
    public let key: ResourceKey
    /// Where the document starts.
    public let location: SourceLocation
    /// Everything else, behind one reference: sets of 100,000 documents are copied and
    /// destroyed as arrays, and each separately counted field costs there.
    private let parts: Parts

    /// The spec in canonical JSON, as the store keeps it.
    public var specJSON: String { parts.specJSON }
    /// SHA-256 of `specJSON`: equal hashes mean equal specs.
    public var specHash: String { parts.specHash }
    /// Labels and annotations in canonical JSON.
    public var labelsJSON: String { parts.labelsJSON }
    public var annotationsJSON: String { parts.annotationsJSON }
    /// The names the spec refers to (and, for project-scoped kinds, its project).
    public var references: [Reference] { parts.references }
    /// Positions of fields later checks may complain about (references, name, project), by path.
    ///
    /// Kept instead of the parsed tree, which would cost far more memory across a large set.
    var fieldLocations: FieldLocations { parts.fieldLocations }

    /// The resource with defaults applied (status and read-only metadata dropped).
    public var resource: Resource {
        get throws { try parts.resource(key: key) }
    }

    init(resource: Resource, location: SourceLocation, root: Node?) throws {
        key = resource.key
        self.location = location
        let specText = try CanonicalJSON.string(resource.spec.body)
        var references = resource.spec.body.references(project: resource.metadata.project)
        if resource.kind.scope == .project {
            var project = Reference(kind: .project, project: nil, name: resource.metadata.project ?? "", path: [])
            project.path = [.key("metadata"), .key("project")]
            references.insert(project, at: 0)
        }
        var locations: [String: SourceLocation] = [:]
        if let root {
            // An access key is checked against other users' at apply, so its position is kept too.
            let checked: [[PathElement]] = resource.kind == .user ? [[.key("spec"), .key("accessKey")]] : []
            for path in references.map(\.path) + [[.key("metadata"), .key("name")], [.key("metadata"), .key("project")]] + checked {
                if let mark = root.locate(path) {
                    locations[renderPath(path)] = SourceLocation(file: location.file, line: mark.line, column: mark.column)
                }
            }
        }
        parts = Parts(
            specJSON: specText, specHash: CanonicalJSON.sha256(Data(specText.utf8)),
            labelsJSON: try CanonicalJSON.string(resource.metadata.labels),
            annotationsJSON: try CanonicalJSON.string(resource.metadata.annotations),
            references: references, fieldLocations: .parsed(locations), resource: resource
        )
    }

    /// Restores a document from its cached parts; the typed spec is decoded on first use.
    init(
        key: ResourceKey, location: SourceLocation, specJSON: String, specHash: String, labelsJSON: String,
        annotationsJSON: String, references: [Reference], fieldLocations: FieldLocations
    ) {
        self.key = key
        self.location = location
        parts = Parts(
            specJSON: specJSON, specHash: specHash, labelsJSON: labelsJSON, annotationsJSON: annotationsJSON,
            references: references, fieldLocations: fieldLocations, resource: nil
        )
    }

    /// A document made in code rather than read from a file (the EC2 API, tests).
    public init(resource: Resource, origin: String = "<api>") throws {
        var resource = resource
        resource.spec = resource.spec.defaulted()
        try self.init(resource: resource, location: SourceLocation(file: origin, line: 1, column: 1), root: nil)
    }

    /// The position of a field that references or identity checks name; the document's start otherwise.
    public func location(of path: [PathElement]) -> SourceLocation {
        let key = renderPath(path)
        switch fieldLocations {
        case .parsed(let locations):
            return locations[key] ?? location
        case .encoded(let text):
            // `path=line:column;…`, parsed only when an error needs a position.
            for entry in text.split(separator: ";") {
                guard let equals = entry.lastIndex(of: "="), entry[..<equals] == key else { continue }
                let numbers = entry[entry.index(after: equals)...].split(separator: ":")
                if numbers.count == 2, let line = Int(numbers[0]), let column = Int(numbers[1]) {
                    return SourceLocation(file: location.file, line: line, column: column)
                }
            }
            return location
        }
    }

    /// Field positions: a map for parsed documents, the cache's text form for restored ones.
    enum FieldLocations: Sendable {
        case parsed([String: SourceLocation])
        case encoded(String)

        /// `path=line:column;…` sorted by path.
        var encoded: String {
            switch self {
            case .encoded(let text): return text
            case .parsed(let locations): return locations.map { "\($0.key)=\($0.value.line):\($0.value.column)" }.sorted().joined(separator: ";")
            }
        }
    }
}

extension ManifestDocument {
    /// The immutable body of a document, with the typed resource decoded on first use when it came from the cache.
    private final class Parts: Sendable {
        let specJSON: String
        let specHash: String
        let labelsJSON: String
        let annotationsJSON: String
        let references: [Reference]
        let fieldLocations: FieldLocations
        /// Boxed: a restored document usually never decodes, and an inline `Resource?` made every
        /// document of a 100,000-document set a few hundred bytes bigger.
        private let decoded: Mutex<Decoded?>

        private final class Decoded: Sendable {
            let resource: Resource
            init(_ resource: Resource) { self.resource = resource }
        }

        init(
            specJSON: String, specHash: String, labelsJSON: String, annotationsJSON: String, references: [Reference],
            fieldLocations: FieldLocations, resource: Resource?
        ) {
            self.specJSON = specJSON
            self.specHash = specHash
            self.labelsJSON = labelsJSON
            self.annotationsJSON = annotationsJSON
            self.references = references
            self.fieldLocations = fieldLocations
            decoded = Mutex(resource.map(Decoded.init))
        }

        func resource(key: ResourceKey) throws -> Resource {
            if let box = decoded.withLock({ $0 }) { return box.resource }
            let decoder = JSONDecoder()
            let metadata = ObjectMeta(
                name: key.name,
                project: key.project.isEmpty ? nil : key.project,
                labels: try decoder.decode([String: String].self, from: Data(labelsJSON.utf8)),
                annotations: try decoder.decode([String: String].self, from: Data(annotationsJSON.utf8))
            )
            let resource = Resource(metadata: metadata, spec: try ResourceSpec.fromJSON(Data(specJSON.utf8), kind: key.kind))
            decoded.withLock { $0 = Decoded(resource) }
            return resource
        }
    }
}
