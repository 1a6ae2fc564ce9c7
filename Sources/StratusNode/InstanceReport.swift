import StratusCompute
import StratusModel

/// What a node observed after converging an instance: typed, for the controller to turn into status.
public struct InstanceReport: Sendable, Equatable, Codable {
    public var id: String
    public var node: String
    public var domain: String
    public var state: DomainState
    /// The generation the domain's definition describes.
    public var generation: Int
    /// Whether the domain runs, or is stopped, as the intent asked.
    public var settled: Bool
    /// The generation whose configuration a running domain still has, when it differs from its
    /// definition (memory, vCPUs, disks change only on a restart).
    public var restartRequiredFrom: Int?
    /// The bridge the NIC joined, if any.
    public var bridge: String?
    /// Why the NIC was left out, if it was.
    public var nicNote: String?
    /// Each wanted volume: `attached`, or why it is not (`AoEInitiatorUnavailable: …`).
    public var volumes: [String: String] = [:]

    public init(
        id: String, node: String, domain: String, state: DomainState, generation: Int, settled: Bool,
        restartRequiredFrom: Int? = nil, bridge: String? = nil, nicNote: String? = nil
    ) {
        self.id = id
        self.node = node
        self.domain = domain
        self.state = state
        self.generation = generation
        self.settled = settled
        self.restartRequiredFrom = restartRequiredFrom
        self.bridge = bridge
        self.nicNote = nicNote
    }
}

/// Something a node saw happen to one of its domains.
public struct NodeEvent: Sendable, Equatable, Codable {
    public var node: String
    /// The instance whose domain it was.
    public var instanceId: String
    public var kind: DomainEvent.Kind

    public init(node: String, instanceId: String, kind: DomainEvent.Kind) {
        self.node = node
        self.instanceId = instanceId
        self.kind = kind
    }
}

/// A node-side failure, with what to do about it.
public struct NodeError: Error, Sendable, Equatable, Codable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Sendable, Codable {
        /// No agent answers for the node.
        case unreachable
        /// The node's agent answered before and has been silent longer than the controller allows.
        case lost
        /// The image's files are not usable on the node.
        case imageUnavailable
        /// The hypervisor refused or failed.
        case hypervisor
        /// Files of the instance could not be written.
        case storage

        /// The condition reason a resource shows for it.
        public var reason: ConditionReason {
            switch self {
            case .unreachable: .awaitingNodeAgent
            case .lost: .nodeLost
            case .imageUnavailable: .imageUnavailable
            case .hypervisor: .hypervisorError
            case .storage: .reconcileError
            }
        }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
