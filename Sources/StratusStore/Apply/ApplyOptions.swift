import StratusModel

/// How an apply set is recorded.
public struct ApplyOptions: Sendable {
    /// The apply set the resources join; `prune` only ever deletes members of this set.
    public var applySet: String
    /// The field manager recorded on each resource: `apply:<set>` unless given (`api` for the EC2 API).
    public var manager: String
    /// Delete members of the set that the files no longer contain.
    public var prune: Bool
    /// Lift the prune budget (at most 10 resources and at most half of the set).
    public var allowMassDelete: Bool
    /// EC2-style ids to give resources this apply creates (the EC2 API names instances by their id).
    public var presetIds: [ResourceKey: String] = [:]
    /// Authorizes each change of the plan (creates, updates and prunes) for whoever asked, in the
    /// apply's transaction; throwing refuses the whole apply. Nil: the caller may change anything.
    public var authorize: (@Sendable (PlannedChange) throws -> Void)?
    /// Fill `ApplyPlan.created` with the created resources as stored.
    public var keepCreated = false
    /// Refuse the apply, changing nothing, unless the desired state is still at this version
    /// (`ApplyPlan.storeVersion` of a saved plan): `stratus apply plan.json`.
    public var expectVersion: Int64?
    /// Annotations to set on every resource this apply creates or updates (a GitSync's
    /// `stratus/revision`); they are not compared, so a resource that changes nothing else keeps its own.
    public var stamp: [String: String] = [:]

    /// Writes through the EC2 API: no apply set (so `diff` of a directory shows them as outside
    /// every set, and no prune ever deletes them) and the field manager `api`.
    public static var api: ApplyOptions { ApplyOptions(applySet: "", manager: "api") }

    /// The set as stored: nil for API writes.
    var storedSet: String? { applySet.isEmpty ? nil : applySet }

    public init(applySet: String = "default", manager: String? = nil, prune: Bool = false, allowMassDelete: Bool = false) {
        self.applySet = applySet
        self.manager = manager ?? "apply:\(applySet)"
        self.prune = prune
        self.allowMassDelete = allowMassDelete
    }

    /// The most resources one prune may delete without `allowMassDelete`.
    public static let pruneBudget = 10
}
