import Foundation
import StratusCompute
import StratusModel
import StratusStore

/// Reports the local node's capacity and hypervisor into its `Node` resource.
///
/// Nodes other than the local one are reported by their own agents (a later issue); until then
/// they are shown as not reporting.
public struct NodeReconciler: Reconciler {
    public let name = "node"
    public let kinds: Set<Kind> = [.node]
    public let concurrency = 1
    private let localNode: String
    private let hypervisor: any Hypervisor

    public init(localNode: String, hypervisor: any Hypervisor) {
        self.localNode = localNode
        self.hypervisor = hypervisor
    }

    public func reconcile(_ resource: StoredResource) async -> ReconcileResult {
        let now = Timestamp.string(Date())
        var status = resource.resource.status ?? ResourceStatus()
        guard resource.key.name == localNode else {
            status.phase = "Unknown"
            status.setCondition(Condition(type: "Ready", status: "Unknown", reason: "NoAgent", message: "no agent reports node \(resource.key.name)", lastTransitionTime: now))
            return .done(status)
        }
        do {
            let capacity = try await hypervisor.nodeInfo()
            status.phase = "Ready"
            status.details["memoryMB"] = .int(capacity.memoryMB)
            status.details["vcpus"] = .int(capacity.vcpus)
            status.details["hypervisor"] = .string(hypervisor.uri)
            status.details["domainType"] = .string(hypervisor.domainType)
            status.setCondition(Condition(type: "Ready", status: "True", reason: "HypervisorReachable", message: "\(capacity.memoryMB) MB, \(capacity.vcpus) vCPUs via \(hypervisor.uri)", lastTransitionTime: now))
            return .done(status)
        } catch {
            return .failed(reason: "HypervisorUnreachable", message: "\(error)", retryable: true)
        }
    }

    public func finalize(_ resource: StoredResource) async -> ReconcileResult { .done(ResourceStatus()) }

    /// Makes sure the local node has a `Node` resource (apply set `nodes`), keeping any the user wrote.
    public static func register(_ name: String, zone: String, in store: Store) throws {
        guard try store.get(ResourceKey(kind: .node, project: nil, name: name)) == nil else { return }
        let resource = Resource(metadata: ObjectMeta(name: name), spec: .node(NodeSpec(zone: zone)))
        try store.apply([try Admission.document(for: resource, origin: "<node registration>")], options: ApplyOptions(applySet: "nodes", manager: "agent:\(name)"))
    }
}
