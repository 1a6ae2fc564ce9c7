import StratusModel
import StratusStore

/// What the server's node can do beyond the store: used by the APIs for reboot and drift.
///
/// The APIs hold this protocol, not the node agent, so an API server links neither libvirt's
/// wrapper nor the node-side reconcilers.
public protocol NodeOperations: Sendable {
    func reboot(_ instance: StoredResource) async throws
    func drift() async throws -> [DriftFinding]
}
