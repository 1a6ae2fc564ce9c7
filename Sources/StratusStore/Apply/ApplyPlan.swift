import StratusModel

/// What applying a set does to one resource.
public enum ChangeAction: String, Sendable, Codable, CaseIterable {
    case create
    case update
    case delete
    case unchanged
}

/// One resource's planned change, with field-level detail for updates.
public struct PlannedChange: Sendable {
    public var action: ChangeAction
    public var key: ResourceKey
    /// The EC2-style id, when the resource has one already.
    public var id: String?
    /// Field-level changes (`spec.…`, `metadata.labels.…`) for updates.
    public var fields: [FieldChange]
    /// Remarks a user should see: adoption from another set, a cancelled deletion.
    public var notes: [String]
    public var oldSpec: ResourceSpec?
    public var newSpec: ResourceSpec?
    /// Whether the spec itself changes (and so `metadata.generation` bumps).
    public var specChanged: Bool
    /// The field manager of the stored resource before this change (`api:alice`, `apply:default`).
    public var previousManager: String?

    public init(
        action: ChangeAction,
        key: ResourceKey,
        id: String? = nil,
        fields: [FieldChange] = [],
        notes: [String] = [],
        oldSpec: ResourceSpec? = nil,
        newSpec: ResourceSpec? = nil,
        specChanged: Bool = false,
        previousManager: String? = nil
    ) {
        self.action = action
        self.key = key
        self.id = id
        self.fields = fields
        self.notes = notes
        self.oldSpec = oldSpec
        self.newSpec = newSpec
        self.specChanged = specChanged
        self.previousManager = previousManager
    }
}

/// The changes one apply makes (or would make), in apply order.
public struct ApplyPlan: Sendable, Codable {
    public var changes: [PlannedChange]
    /// With `ApplyOptions.keepCreated`, the resources this apply created as they are now stored
    /// (a caller that answers with them, like RunInstances, need not read them back). Not encoded.
    public var created: [StoredResource] = []
    /// The version of the desired state the plan was computed against (`desiredVersion`).
    public var storeVersion: Int64?

    private enum CodingKeys: String, CodingKey { case changes, storeVersion }

    public init(changes: [PlannedChange]) { self.changes = changes }

    /// How many resources each action touches.
    public func count(_ action: ChangeAction) -> Int { changes.reduce(0) { $0 + ($1.action == action ? 1 : 0) } }

    /// Whether anything would change.
    public var hasChanges: Bool { changes.contains { $0.action != .unchanged } }
}
