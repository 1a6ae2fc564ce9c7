import StratusAPI
import StratusAccess
import StratusControl
import StratusModel
import StratusNode
import StratusStore

/// Reboot and drift for the APIs, done by this node's compute and identity reconcilers.
struct ServerOperations: NodeOperations {
    let compute: ComputeReconciler
    let identity: IdentityReconciler

    func reboot(_ instance: StoredResource) async throws {
        do {
            try await compute.reboot(instance)
        } catch let error as NodeError {
            throw APIError(kind: "conflict", message: "cannot reboot \(instance.key): \(error.message)")
        }
    }

    func drift() async throws -> [DriftFinding] {
        do {
            return try await compute.drift() + identity.drift()
        } catch let error as NodeError {
            throw APIError(kind: "conflict", message: "cannot compare with the nodes: \(error.message)")
        }
    }
}
