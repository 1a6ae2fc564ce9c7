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

    /// Where nodes that announce themselves (remote agents) get their `Node` resource.
    private let registry: Store?

    /// - Parameter registry: the store to register nodes in as their agents first report (a
    ///   message transport's nodes come and go); nil when the nodes are fixed.
    public init(transport: any NodeTransport, network: (@Sendable () async -> [String: String])? = nil, registry: Store? = nil) {
        self.transport = transport
        self.network = network
        self.registry = registry
    }

    /// A node that appears, is lost or comes back is reconciled at once (and registered first
    /// when it is new), so its status and the scheduler see it without waiting for a resync.
    public func watch(_ enqueue: @escaping @Sendable (ResourceKey) async -> Void) async {
        for await node in transport.nodeChanges() {
            if let registry {
                let zone = (try? await transport.report(of: node))?.zone ?? NodeSpec.defaultZone
                do { try Self.register(node, zone: zone, in: registry) } catch { continue }
            }
            await enqueue(ResourceKey(kind: .node, project: nil, name: node))
        }
    }

    public func reconcile(_ resource: StoredResource) async -> ReconcileResult {
        let now = Timestamp.string(Date())
        var status = resource.resource.status ?? ResourceStatus()
        let report: NodeReport
        do {
            report = try await transport.report(of: resource.key.name)
        } catch {
            switch error.code {
            case .unreachable:
                status.phase = "Unknown"
                status.setCondition(Condition(type: .ready, status: .unknown, reason: .noAgent, message: "no agent reports node \(resource.key.name)", lastTransitionTime: now))
                return .done(status)
            case .lost:
                // Capacity stays as last reported; the scheduler places nothing on a node not Ready.
                status.phase = "NotReady"
                status.setCondition(Condition(type: .ready, status: .false, reason: .nodeLost, message: error.message, lastTransitionTime: now))
                return .done(status)
            default:
                return .failed(reason: .hypervisorUnreachable, message: error.message, retryable: true)
            }
        }
        status.phase = "Ready"
        status.details["memoryMB"] = .int(report.memoryMB)
        status.details["vcpus"] = .int(report.vcpus)
        status.details["hypervisor"] = .string(report.hypervisor)
        status.details["domainType"] = .string(report.domainType)
        if let heartbeat = report.lastHeartbeat { status.details["lastHeartbeat"] = .string(heartbeat) }
        if let version = report.version { status.details["version"] = .string(version) }
        if let roles = report.roles { status.details["roles"] = .string(roles.joined(separator: ",")) }
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
