import StratusModel
import StratusStore

/// What the server's node can do beyond the store: used by the APIs for reboot and drift.
///
/// The APIs hold this protocol, not the node agent, so an API server links neither libvirt's
/// wrapper nor the node-side reconcilers.
public protocol NodeOperations: Sendable {
    func reboot(_ instance: StoredResource) async throws
    func drift() async throws -> [DriftFinding]
    /// Moves what can move off a node (instances with `restartPolicy: reschedule`) and says why the rest stays.
    func drain(node: String) async throws -> [DrainOutcome]
    /// The end of an instance's console log, from its node; nil when there is none.
    func console(_ instance: StoredResource) async throws -> String?
}
