import StratusAccess
import StratusControl
import StratusModel
import StratusStore

/// Reboot and drift for the APIs, done by this node's compute and identity reconcilers.
struct ServerOperations: NodeOperations {
    let compute: ComputeReconciler
    let identity: IdentityReconciler

    func reboot(_ instance: StoredResource) async throws { try await compute.reboot(instance) }

    func drift() async throws -> [DriftFinding] { try await compute.drift() + identity.drift() }
}
