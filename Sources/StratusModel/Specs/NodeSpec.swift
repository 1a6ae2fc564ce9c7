/// A compute and/or storage host. Usually registered by its agent; capacity is observed.
public struct NodeSpec: SpecBody {
    public static let kind = Kind.node

    /// The availability zone; `nova`, the seed's only zone, when absent.
    public var zone: String?
    /// A cordoned node keeps what it runs but gets nothing new.
    public var cordoned: Bool?
    public var roles: [NodeRole]?
    /// The libvirt URI on the node, e.g. `qemu:///system`.
    public var hypervisor: String?
    /// How many vCPUs may be placed per physical CPU (Nova's `cpu_allocation_ratio`, default 16).
    public var cpuAllocationRatio: Double?
    /// How much memory may be placed per MB of RAM (Nova's `ram_allocation_ratio`, default 1.5).
    public var ramAllocationRatio: Double?

    public init(
        zone: String? = nil, cordoned: Bool? = nil, roles: [NodeRole]? = nil, hypervisor: String? = nil,
        cpuAllocationRatio: Double? = nil, ramAllocationRatio: Double? = nil
    ) {
        self.zone = zone
        self.cordoned = cordoned
        self.roles = roles
        self.hypervisor = hypervisor
        self.cpuAllocationRatio = cpuAllocationRatio
        self.ramAllocationRatio = ramAllocationRatio
    }

    /// The zone a node is in unless it says otherwise.
    public static let defaultZone = "nova"

    public mutating func applyDefaults() {
        if zone == nil { zone = Self.defaultZone }
        if cordoned == nil { cordoned = false }
        if roles == nil { roles = [.compute, .storage] }
        if cpuAllocationRatio == nil { cpuAllocationRatio = 16 }
        if ramAllocationRatio == nil { ramAllocationRatio = 1.5 }
    }

    public func validate(_ validator: inout Validator) {
        validator.name(zone, at: [.key("zone")])
        if let roles, roles.isEmpty { validator.fail([.key("roles")], "must name at least one of compute, storage") }
        for (field, value) in [("cpuAllocationRatio", cpuAllocationRatio), ("ramAllocationRatio", ramAllocationRatio)] {
            if let value, !(value > 0 && value <= 1000) { validator.fail([.key(field)], "must be above 0 and at most 1000, got \(value)") }
        }
    }
}

/// What a node offers.
public enum NodeRole: String, ManifestEnum, AnyManifestEnum {
    case compute
    case storage
}
