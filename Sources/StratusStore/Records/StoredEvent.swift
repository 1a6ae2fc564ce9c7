import GRDB
import StratusModel
import StratusTelemetry

/// One entry of the change feed: what happened to which resource, numbered in order.
public struct StoredEvent: Sendable, Equatable, Codable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "event"

    /// Position in the feed; strictly increasing, never reused.
    public var seq: Int64?
    public var time: String
    public var kind: String
    public var project: String
    public var name: String
    /// `Normal` or `Warning`.
    public var type: String
    /// CamelCase: `Created`, `Updated`, `Deleting`, `Deleted`, `Pruned`, …
    public var reason: String
    public var message: String
    public var generation: Int?
    /// The API request that made this change (`RequestID.current` when it was recorded), so the
    /// controller's reconcile of it logs the same id; nil for changes of the controller itself.
    public var requestId: String?

    public init(time: String, key: ResourceKey, type: String = "Normal", reason: String, message: String, generation: Int? = nil) {
        self.time = time
        self.kind = key.kind.rawValue
        self.project = key.project
        self.name = key.name
        self.type = type
        self.reason = reason
        self.message = message
        self.generation = generation
        self.requestId = RequestID.current
    }

    /// The resource the event is about, if its kind is known.
    public var key: ResourceKey? {
        Kind(rawValue: kind).map { ResourceKey(kind: $0, project: project, name: name) }
    }

    /// Reasons that mean the desired state changed (as opposed to status reports).
    public static let desiredStateReasons: Set<String> = ["Created", "Updated", "Deleting", "Pruned"]

    public mutating func didInsert(_ inserted: InsertionSuccess) { seq = inserted.rowID }
}
