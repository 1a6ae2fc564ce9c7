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

    static let columns = "kind, project, name, ec2Id, spec, specHash, generation, labels, annotations, applySet, manager, createdAt, updatedAt, deletionTimestamp, status"

    init(row: Row) throws {
        let kindName: String = row["kind"]
        guard let kind = Kind(rawValue: kindName) else { throw StoreError.corrupt("unknown kind \(kindName) in the store") }
        let spec = try ResourceSpec.fromJSON(Data((row["spec"] as String).utf8), kind: kind)
        let project: String = row["project"]
        let decoder = JSONDecoder()
        let metadata = ObjectMeta(
            name: row["name"],
            project: project.isEmpty ? nil : project,
            labels: try decoder.decode([String: String].self, from: Data((row["labels"] as String).utf8)),
            annotations: try decoder.decode([String: String].self, from: Data((row["annotations"] as String).utf8)),
            id: row["ec2Id"],
            generation: row["generation"],
            applySet: row["applySet"],
            manager: row["manager"],
            creationTimestamp: row["createdAt"],
            deletionTimestamp: row["deletionTimestamp"]
        )
        let status = try (row["status"] as String?).map { try decoder.decode(ResourceStatus.self, from: Data($0.utf8)) }
        resource = Resource(metadata: metadata, spec: spec, status: status)
        specHash = row["specHash"]
    }
}
