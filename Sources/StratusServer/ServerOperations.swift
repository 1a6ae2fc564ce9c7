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

    func console(_ instance: StoredResource) async throws -> String? {
        do {
            return try await compute.consoleLog(instance)
        } catch let error as NodeError {
            throw APIError(kind: "conflict", message: "cannot read the console of \(instance.key): \(error.message)")
        }
    }

    func drain(node: String) async throws -> [DrainOutcome] {
        do {
            return try await compute.drain(node: node)
        } catch let error as NodeError {
            throw APIError(kind: "conflict", message: "cannot drain \(node): \(error.message)")
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
