import Foundation
import GRDB
import StratusModel
import Synchronization

/// A resource as the store holds it: the envelope with every metadata field filled in.
public struct StoredResource: Sendable, Equatable {
    public var resource: Resource
    public var specHash: String
    /// Who set each field last (`Store.fieldManagers`), when a describe asked for it.
    public var fieldManagers: [String: String]?

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
        let specText: String = row[4]
        let spec = try Self.specs.value(for: SpecText(kind: kind, text: specText)) { try ResourceSpec.fromJSON(Data($0.text.utf8), kind: $0.kind) }
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
        let status = try (row[14] as String?).map { text in try Self.statuses.value(for: text) { try decoder.decode(ResourceStatus.self, from: Data($0.utf8)) } }
        resource = Resource(metadata: metadata, spec: spec, status: status)
        specHash = row[5]
    }

    private static func stringMap(_ json: String, _ decoder: JSONDecoder) throws -> [String: String] {
        json == "{}" ? [:] : try decoder.decode([String: String].self, from: Data(json.utf8))
    }

    struct SpecText: Hashable, Sendable {
        let kind: Kind
        let text: String
    }

    /// Decoded specs and statuses by their JSON text. Decoding is most of what reading a row
    /// costs, and the same text is read again and again (every DescribeInstances and every
    /// resync reads every instance), while hashing it takes a small part of that.
    static let specs = DecodeCache<SpecText, ResourceSpec>(limit: 50_000)
    static let statuses = DecodeCache<String, ResourceStatus>(limit: 50_000)
}

/// A bounded map from an encoded value to its decoded form, shared by every thread. When full it
/// starts over, which keeps it simple and its memory bounded (at most `limit` values).
final class DecodeCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let limit: Int
    private let values = Mutex<[Key: Value]>([:])

    init(limit: Int) { self.limit = limit }

    func value(for key: Key, decode: (Key) throws -> Value) throws -> Value {
        if let value = values.withLock({ $0[key] }) { return value }
        let value = try decode(key)
        values.withLock { values in
            if values.count >= limit { values.removeAll(keepingCapacity: true) }
            values[key] = value
        }
        return value
    }
}
