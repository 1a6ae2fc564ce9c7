import StratusCompute
import StratusModel

/// How the controller reaches node agents: send desired state, get observed state back.
///
/// Every call names the node; a node whose agent cannot be reached throws
/// `NodeError(.unreachable, …)`, which the controller shows as `AwaitingNodeAgent` and retries.
/// Calls carry whole intents with generations, so a repeated or lost call is harmless.
public protocol NodeTransport: Sendable {
    /// The nodes whose agents this transport reaches now.
    var nodes: [String] { get }
    /// Converges one instance on a node and reports what the node then sees.
    func converge(_ intent: InstanceIntent, on node: String) async throws(NodeError) -> InstanceReport
    /// Removes an instance's domain and files from a node.
    func remove(instance id: String, on node: String) async throws(NodeError)
    /// Every domain of a node (with owners, from each domain's metadata).
    func domains(on node: String) async throws(NodeError) -> [DomainInfo]
    /// The states of a node's domains by name (no metadata): for bulk resyncs.
    func domainStates(on node: String) async throws(NodeError) -> [String: DomainState]
    /// One domain of a node, if it exists.
    func domain(named name: String, on node: String) async throws(NodeError) -> DomainInfo?
    /// Reboots an instance's guest.
    func reboot(instance id: String, on node: String) async throws(NodeError)
    /// A node's capacity and hypervisor.
    func report(of node: String) async throws(NodeError) -> NodeReport
    /// The end of an instance's console log on its node; nil when there is none.
    func consoleLog(instance id: String, on node: String) async throws(NodeError) -> String?
    /// What the nodes see happen to their domains, merged; ends when the transport stops.
    func events() -> AsyncStream<NodeEvent>
    /// The names of nodes that appeared, were lost, came back or changed what they report.
    func nodeChanges() -> AsyncStream<String>
}

extension NodeTransport {
    /// In one process the nodes are fixed: nothing changes.
    public func nodeChanges() -> AsyncStream<String> { AsyncStream { _ in } }
}

/// The embedded default: the agents run in this process and are called directly.
public struct InProcessTransport: NodeTransport {
    private let agents: [String: NodeAgent]

    public init(_ agents: [NodeAgent]) {
        self.agents = Dictionary(agents.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// One process, one node: an agent named `node` on `hypervisor`, keeping instance files under
    /// `dataDirectory` and reporting `capacity` where it is declared.
    public static func local(
        node: String, zone: String = NodeSpec.defaultZone, hypervisor: any Hypervisor, dataDirectory: String, capacity: DeclaredCapacity? = nil
    ) -> InProcessTransport {
        let compute = ComputeAgent(node: node, hypervisor: hypervisor, dataDirectory: dataDirectory)
        return InProcessTransport([NodeAgent(name: node, zone: zone, compute: compute, declaredCapacity: capacity)])
    }

    public var nodes: [String] { agents.keys.sorted() }

    private func agent(_ node: String) throws(NodeError) -> NodeAgent {
        guard let agent = agents[node] else {
            throw NodeError(.unreachable, "placed on \(node), whose agent converges it; no agent of \(node) is connected to this controller")
        }
        return agent
    }

    public func converge(_ intent: InstanceIntent, on node: String) async throws(NodeError) -> InstanceReport {
        try await agent(node).compute.converge(intent)
    }

    public func remove(instance id: String, on node: String) async throws(NodeError) { try await agent(node).compute.remove(instance: id) }

    public func domains(on node: String) async throws(NodeError) -> [DomainInfo] { try await agent(node).compute.domains() }

    public func domainStates(on node: String) async throws(NodeError) -> [String: DomainState] { try await agent(node).compute.domainStates() }

    public func domain(named name: String, on node: String) async throws(NodeError) -> DomainInfo? { try await agent(node).compute.domain(named: name) }

    public func reboot(instance id: String, on node: String) async throws(NodeError) { try await agent(node).compute.reboot(instance: id) }

    public func report(of node: String) async throws(NodeError) -> NodeReport { try await agent(node).report() }

    public func consoleLog(instance id: String, on node: String) async throws(NodeError) -> String? { try agent(node).compute.consoleLog(instance: id) }

    public func events() -> AsyncStream<NodeEvent> {
        let streams = agents.values.compactMap { $0.compute.events() }
        return AsyncStream { continuation in
            let task = Task {
                await withTaskGroup(of: Void.self) { group in
                    for stream in streams {
                        group.addTask { for await event in stream { continuation.yield(event) } }
                    }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
