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

    public init(zone: String? = nil, cordoned: Bool? = nil, roles: [NodeRole]? = nil, hypervisor: String? = nil) {
        self.zone = zone
        self.cordoned = cordoned
        self.roles = roles
        self.hypervisor = hypervisor
    }

    /// The zone a node is in unless it says otherwise.
    public static let defaultZone = "nova"

    public mutating func applyDefaults() {
        if zone == nil { zone = Self.defaultZone }
        if cordoned == nil { cordoned = false }
        if roles == nil { roles = [.compute, .storage] }
    }

    public func validate(_ validator: inout Validator) {
        validator.name(zone, at: [.key("zone")])
        if let roles, roles.isEmpty { validator.fail([.key("roles")], "must name at least one of compute, storage") }
    }
}

/// What a node offers.
public enum NodeRole: String, ManifestEnum, AnyManifestEnum {
    case compute
    case storage
}
