import StratusModel

/// What a compute node's hypervisor can do, as the compute reconciler needs it.
///
/// The libvirt implementation is the real one; the protocol is the seam that lets the same
/// reconciler run in a remote node agent later.
public protocol Hypervisor: Sendable {
    /// The URI this hypervisor was opened with (`test:///default`, `qemu:///system`, …).
    var uri: String { get }
    /// `kvm`, `qemu` (TCG) or `test`: the domain type new domains get.
    var domainType: String { get }
    /// Capacity of the host.
    func nodeInfo() async throws -> NodeCapacity
    /// Every domain the hypervisor holds, Stratus-owned or not.
    func listDomains() async throws -> [DomainInfo]
    /// The state of every domain by name: a cheap listing (no metadata, no XML).
    func domainStates() async throws -> [String: DomainState]
    /// The domain with this name, or nil.
    func domain(named name: String) async throws -> DomainInfo?
    /// Defines (or redefines) a persistent domain from XML.
    func define(xml: String) async throws
    /// Starts a defined domain.
    func start(_ name: String) async throws
    /// Powers a domain off at once (like pulling the plug).
    func destroy(_ name: String) async throws
    /// Removes a domain's definition (it must not be running).
    func undefine(_ name: String) async throws
    /// Asks the guest to reboot.
    func reboot(_ name: String) async throws
    /// The domain's XML as libvirt holds it (live configuration when running), or nil.
    func xml(of name: String) async throws -> String?
    /// The domain's persistent definition, as the next start would use it.
    func definedXML(of name: String) async throws -> String?
    /// Adds a device (a `<disk>`) to the running domain (`live`), to its definition (`config`), or both.
    func attachDevice(_ name: String, xml: String, live: Bool, config: Bool) async throws
    /// Removes a device, as `attachDevice` adds one.
    func detachDevice(_ name: String, xml: String, live: Bool, config: Bool) async throws
    /// The size in bytes the running domain's disk `device` (`vdb`) has, as its guest sees it.
    func diskCapacity(_ name: String, device: String) async throws -> UInt64
    /// Tells the running domain its disk `device` is now `bytes` long (the backing store grew).
    func resizeDisk(_ name: String, device: String, bytes: UInt64) async throws
    /// Lifecycle events (started, stopped, undefined, …) of every domain, as libvirt reports them.
    func lifecycleEvents() throws -> AsyncStream<DomainEvent>
}

/// A domain lifecycle event.
public struct DomainEvent: Sendable, Equatable {
    public var domain: String
    public var kind: Kind

    /// libvirt's `virDomainEventType`, as a Swift enum (the C value is mapped at the wrapper).
    public enum Kind: Int32, Sendable, Equatable, Codable, CaseIterable {
        case defined = 0
        case undefined = 1
        case started = 2
        case suspended = 3
        case resumed = 4
        case stopped = 5
        case shutdown = 6
        case pmSuspended = 7
        case crashed = 8

        /// Whether the guest stopped running or its definition went away: what a repair may need.
        public var endsGuest: Bool { self == .undefined || self == .stopped || self == .shutdown || self == .crashed }
    }

    public init(domain: String, kind: Kind) {
        self.domain = domain
        self.kind = kind
    }
}

/// Capacity of a host, from libvirt's `virNodeGetInfo`.
public struct NodeCapacity: Sendable, Equatable {
    public var memoryMB: Int
    public var vcpus: Int
    public var model: String

    public init(memoryMB: Int, vcpus: Int, model: String) {
        self.memoryMB = memoryMB
        self.vcpus = vcpus
        self.model = model
    }
}

/// A domain as the hypervisor reports it.
public struct DomainInfo: Sendable, Equatable, Codable {
    public var name: String
    public var uuid: String
    public var state: DomainState
    /// The Stratus owner in the running configuration's metadata (the defined one when shut off).
    public var owner: DomainOwner?
    /// The owner in the persistent definition, which a redefinition changes at once while a
    /// running domain keeps its live configuration until it restarts.
    public var definedOwner: DomainOwner?

    public init(name: String, uuid: String, state: DomainState, owner: DomainOwner?, definedOwner: DomainOwner? = nil) {
        self.name = name
        self.uuid = uuid
        self.state = state
        self.owner = owner
        self.definedOwner = definedOwner ?? owner
    }
}

/// Which resource a domain belongs to, as stored in its libvirt metadata.
public struct DomainOwner: Sendable, Equatable, Codable {
    public var project: String
    public var name: String
    public var id: String
    public var generation: Int
    /// A digest of the domain configuration (memory, vCPUs, disks, boot): equal means no restart is needed.
    public var config: String

    public init(project: String, name: String, id: String, generation: Int, config: String = "") {
        self.project = project
        self.name = name
        self.id = id
        self.generation = generation
        self.config = config
    }

    public var key: ResourceKey { ResourceKey(kind: .instance, project: project, name: name) }
}

/// libvirt's domain states (`virDomainState`).
public enum DomainState: Int, Sendable, Equatable, Codable, CustomStringConvertible {
    case noState = 0
    case running = 1
    case blocked = 2
    case paused = 3
    case shutdown = 4
    case shutoff = 5
    case crashed = 6
    case suspended = 7

    /// Whether the guest is executing (or about to).
    public var isActive: Bool { self == .running || self == .blocked || self == .paused }

    public var description: String {
        switch self {
        case .noState: "nostate"
        case .running: "running"
        case .blocked: "blocked"
        case .paused: "paused"
        case .shutdown: "shutting-down"
        case .shutoff: "shut-off"
        case .crashed: "crashed"
        case .suspended: "suspended"
        }
    }
}

/// A hypervisor call that failed, with libvirt's own message.
public struct HypervisorError: Error, Sendable, CustomStringConvertible {
    public var operation: String
    public var message: String
    /// libvirt's error code (`virErrorNumber`), when known.
    public var code: Int32

    public init(operation: String, message: String, code: Int32 = 0) {
        self.operation = operation
        self.message = message
        self.code = code
    }

    public var description: String { "\(operation): \(message)" }
}
