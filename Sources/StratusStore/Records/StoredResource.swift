import Foundation
import GRDB
import StratusModel

/// A resource as the store holds it: the envelope with every metadata field filled in.
public struct StoredResource: Sendable, Equatable {
    public var resource: Resource
    public var specHash: String

    public var key: ResourceKey { resource.key }
    public var metadata: ObjectMeta { resource.metadata }
    public var generation: Int { resource.metadata.generation ?? 0 }

    /// Whether deletion was requested and the controller has not finished it.
    public var isTerminating: Bool { resource.metadata.deletionTimestamp != nil }

    /// The phase shown by `get`: `Terminating`, the controller's phase, or `Pending` before it looked.
    public var displayPhase: String {
        if isTerminating { return "Terminating" }
        return resource.status?.phase ?? "Pending"
    }

    init(resource: Resource, specHash: String) {
        self.resource = resource
        self.specHash = specHash
    }

    static let columns = "kind, project, name, ec2Id, spec, specHash, generation, labels, annotations, applySet, manager, createdAt, updatedAt, deletionTimestamp, status"

    /// Reads a row selected with `columns`, by position: looking columns up by name lowercases
    /// each name on every row, which shows when a list decodes 10,000 rows.
    init(row: Row) throws {
        let kindName: String = row[0]
        guard let kind = Kind(rawValue: kindName) else { throw StoreError.corrupt("unknown kind \(kindName) in the store") }
        let spec = try ResourceSpec.fromJSON(Data((row[4] as String).utf8), kind: kind)
        let project: String = row[1]
        let decoder = JSONDecoder()
        let metadata = ObjectMeta(
            name: row[2],
            project: project.isEmpty ? nil : project,
            labels: try Self.stringMap(row[7], decoder),
            annotations: try Self.stringMap(row[8], decoder),
            id: row[3],
            generation: row[6],
            applySet: row[9],
            manager: row[10],
            creationTimestamp: row[11],
            deletionTimestamp: row[13]
        )
        let status = try (row[14] as String?).map { try decoder.decode(ResourceStatus.self, from: Data($0.utf8)) }
        resource = Resource(metadata: metadata, spec: spec, status: status)
        specHash = row[5]
    }

    private static func stringMap(_ json: String, _ decoder: JSONDecoder) throws -> [String: String] {
        json == "{}" ? [:] : try decoder.decode([String: String].self, from: Data(json.utf8))
    }
}
