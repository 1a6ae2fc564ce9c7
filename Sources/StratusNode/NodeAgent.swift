import StratusCompute
import StratusModel

/// Everything that runs on one node: its name, zone and the node-side reconcilers.
///
/// Holds drivers only (`Hypervisor` now; host networking and block exports next), never the
/// store: in one process the controller reaches it through `InProcessTransport`, on another
/// host through a message transport, with the same calls.
public struct NodeAgent: Sendable {
    public let name: String
    public let zone: String
    public let compute: ComputeAgent
    /// What the operator says the node has (`--node-capacity`), reported instead of the hypervisor's figures.
    public let declaredCapacity: DeclaredCapacity?

    public init(name: String, zone: String = NodeSpec.defaultZone, compute: ComputeAgent, declaredCapacity: DeclaredCapacity? = nil) {
        self.name = name
        self.zone = zone
        self.compute = compute
        self.declaredCapacity = declaredCapacity
    }

    /// What the node reports about itself for its `Node` resource.
    public func report() async throws(NodeError) -> NodeReport {
        var capacity: NodeCapacity
        do { capacity = try await compute.capacity() } catch { throw NodeError(.hypervisor, "\(error)") }
        if let declaredCapacity { capacity = declaredCapacity.applied(to: capacity) }
        return NodeReport(node: name, memoryMB: capacity.memoryMB, vcpus: capacity.vcpus, hypervisor: compute.hypervisorURI, domainType: compute.domainType)
    }
}

/// A node's capacity and hypervisor, as its agent reports them.
public struct NodeReport: Sendable, Equatable, Codable {
    public var node: String
    public var memoryMB: Int
    public var vcpus: Int
    public var hypervisor: String
    public var domainType: String
    /// Filled in by a message transport from the node's heartbeats: when the last one came, and
    /// what the agent said of itself.
    public var lastHeartbeat: String?
    public var version: String?
    public var roles: [String]?
    public var zone: String?
}
