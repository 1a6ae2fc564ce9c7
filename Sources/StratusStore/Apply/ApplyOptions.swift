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

    public init(applySet: String = "default", manager: String? = nil, prune: Bool = false, allowMassDelete: Bool = false) {
        self.applySet = applySet
        self.manager = manager ?? "apply:\(applySet)"
        self.prune = prune
        self.allowMassDelete = allowMassDelete
    }

    /// The most resources one prune may delete without `allowMassDelete`.
    public static let pruneBudget = 10
}
