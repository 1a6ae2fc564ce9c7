import StratusModel
import StratusStore

/// Converges one backend's real world (libvirt, LDAP, AoE, bridges) to the desired state of some kinds.
///
/// Reconcilers talk to their drivers through protocols only, so the same code runs in the
/// controller and, later, in remote node agents. They must be idempotent: the controller calls
/// them again after restarts, resyncs and retries.
public protocol Reconciler: Sendable {
    /// The backend name, for per-backend concurrency limits and logs (`compute`, `identity`).
    var name: String { get }
    /// The kinds this reconciler converges.
    var kinds: Set<Kind> { get }
    /// How many resources of this backend may be reconciled at once.
    var concurrency: Int { get }
    /// Brings the world in line with the resource's spec and reports the observed status.
    func reconcile(_ resource: StoredResource) async -> ReconcileResult
    /// Removes the resource's external state; `.done` lets the controller delete the row.
    func finalize(_ resource: StoredResource) async -> ReconcileResult
    /// Removes external things this reconciler owns that no resource (of `wanted`, which
    /// includes those being deleted) describes; returns what it removed. Called on each resync.
    func sweep(_ wanted: [StoredResource]) async -> [String]
    /// A periodic resync between full ones, in bulk: compares the world with the store (the
    /// reconciler reads what it needs itself), removes what nothing wants, and returns the
    /// resources that need a reconcile; nil when it cannot, and then all of them are reconciled
    /// and swept. Start and each full resync reconcile and sweep everything, so what a bulk
    /// comparison cannot see is converged then.
    func bulkResync() async -> [ResourceKey]?
    /// Runs for the controller's lifetime, calling `enqueue` when the world changes under a
    /// resource (a domain stopped out of band), so repairs do not wait for the next resync.
    func watch(_ enqueue: @escaping @Sendable (ResourceKey) async -> Void) async
}

extension Reconciler {
    public var concurrency: Int { 4 }
    public func sweep(_ wanted: [StoredResource]) async -> [String] { [] }
    public func bulkResync() async -> [ResourceKey]? { nil }
    public func watch(_ enqueue: @escaping @Sendable (ResourceKey) async -> Void) async {}
}

/// What one reconcile achieved.
public enum ReconcileResult: Sendable, Equatable {
    /// Converged; the status to record (its `observedGeneration` is filled in by the controller).
    case done(ResourceStatus)
    /// Progressing (a domain still booting); record the status and look again later.
    case requeue(ResourceStatus, after: Duration)
    /// Could not converge. Retryable failures back off exponentially; terminal ones wait for a spec change.
    case failed(reason: ConditionReason, message: String, retryable: Bool)
}

extension ReconcileResult {
    /// The `result` label of `stratus_reconciles_total`.
    var label: String {
        switch self {
        case .done: "done"
        case .requeue: "requeue"
        case .failed: "failed"
        }
    }
}
