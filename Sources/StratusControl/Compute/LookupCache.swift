import StratusModel
import StratusStore
import Synchronization

/// Short-lived copies of what many reconciles read (instance types, images, networks).
///
/// Reading and decoding the same few resources for each of a thousand instances is most of a
/// reconcile's cost; a second of staleness is harmless, since a change to any of them is picked
/// up by the next reconcile anyway.
final class LookupCache: Sendable {
    private let store: Store
    private let lifetime: Duration
    private let entries = Mutex<[String: (value: [StoredResource], at: ContinuousClock.Instant)]>([:])

    init(store: Store, lifetime: Duration = .seconds(1)) {
        self.store = store
        self.lifetime = lifetime
    }

    /// One resource, or nil.
    func get(_ key: ResourceKey) throws -> StoredResource? {
        try cached("get:\(key)") { try store.get(key).map { [$0] } ?? [] }.first
    }

    /// The resources of a kind in a project.
    func list(_ kind: Kind, project: String) throws -> [StoredResource] {
        try cached("list:\(kind.rawValue)/\(project)") { try store.list(kind: kind, project: project) }
    }

    private func cached(_ key: String, _ load: () throws -> [StoredResource]) throws -> [StoredResource] {
        let now = ContinuousClock.now
        if let entry = entries.withLock({ $0[key] }), now - entry.at < lifetime { return entry.value }
        let value = try load()
        entries.withLock { $0[key] = (value, now) }
        return value
    }
}
