import Foundation
import StratusModel
import StratusNode
import StratusStore

/// Records each node's capacity and hypervisor in its `Node` resource, as its agent reports them.
///
/// Nodes whose agent this controller cannot reach are shown as not reporting.
public struct NodeReconciler: Reconciler {
    public let name = "node"
    public let kinds: Set<Kind> = [.node]
    public let concurrency = 1
    private let transport: any NodeTransport
    /// What this node's networking can do (`NetworkReconciler.nodeDetails`), for its status.
    private let network: (@Sendable () async -> [String: String])?

    public init(transport: any NodeTransport, network: (@Sendable () async -> [String: String])? = nil) {
        self.transport = transport
        self.network = network
    }

    public func reconcile(_ resource: StoredResource) async -> ReconcileResult {
        let now = Timestamp.string(Date())
        var status = resource.resource.status ?? ResourceStatus()
        let report: NodeReport
        do {
            report = try await transport.report(of: resource.key.name)
        } catch {
            guard error.code == .unreachable else { return .failed(reason: .hypervisorUnreachable, message: error.message, retryable: true) }
            status.phase = "Unknown"
            status.setCondition(Condition(type: .ready, status: .unknown, reason: .noAgent, message: "no agent reports node \(resource.key.name)", lastTransitionTime: now))
            return .done(status)
        }
        status.phase = "Ready"
        status.details["memoryMB"] = .int(report.memoryMB)
        status.details["vcpus"] = .int(report.vcpus)
        status.details["hypervisor"] = .string(report.hypervisor)
        status.details["domainType"] = .string(report.domainType)
        if let network {
            for (key, value) in await network() { status.details[key] = .string(value) }
        }
        status.setCondition(Condition(type: .ready, status: .true, reason: .hypervisorReachable, message: "\(report.memoryMB) MB, \(report.vcpus) vCPUs via \(report.hypervisor)", lastTransitionTime: now))
        return .done(status)
    }

    public func finalize(_ resource: StoredResource) async -> ReconcileResult { .done(ResourceStatus()) }

    /// Makes sure a node has a `Node` resource (apply set `nodes`), keeping any the user wrote.
    public static func register(_ name: String, zone: String, in store: Store) throws {
        guard try store.get(ResourceKey(kind: .node, project: nil, name: name)) == nil else { return }
        let resource = Resource(metadata: ObjectMeta(name: name), spec: .node(NodeSpec(zone: zone)))
        try store.apply([try Admission.document(for: resource, origin: "<node registration>")], options: ApplyOptions(applySet: "nodes", manager: "agent:\(name)"))
    }
}
