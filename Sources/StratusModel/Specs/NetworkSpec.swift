/// A project's layer-2 network: a VLAN, a bridge on every node, a subnet and DHCP.
public struct NetworkSpec: SpecBody {
    public static let kind = Kind.network

    /// The subnet; absent, the network reconciler gives it the /24 of the private range
    /// (`--private-range`, 10.0.0.0/8) that its VLAN id numbers, shown as `status.details.cidr`.
    public var cidr: String?
    /// The 802.1Q tag; allocated from the pool when absent.
    public var vlan: Int?
    /// The bridge name; `br<vlan>` when absent.
    public var bridge: String?
    public var dhcp: Bool?
    public var dns: [String]?

    public init(cidr: String? = nil, vlan: Int? = nil, bridge: String? = nil, dhcp: Bool? = nil, dns: [String]? = nil) {
        self.cidr = cidr
        self.vlan = vlan
        self.bridge = bridge
        self.dhcp = dhcp
        self.dns = dns
    }

    public mutating func applyDefaults() {
        if dhcp == nil { dhcp = true }
        if dns == nil { dns = [] }
    }

    /// The subnet the network has: its spec's, or the one the network reconciler gave it.
    public func subnet(_ status: ResourceStatus?) -> String? {
        cidr ?? status?.details["cidr"]?.stringValue
    }

    /// The /24 of `range` numbered `vlan` (VLAN 100 of 10.0.0.0/8: 10.0.100.0/24), if the range
    /// holds that many.
    public static func slice(of range: IPv4Network, vlan: Int) -> IPv4Network? {
        guard range.prefix <= 24, vlan >= 0, UInt64(vlan) < UInt64(1) << UInt64(24 - range.prefix) else { return nil }
        guard case .success(let slice) = IPv4Network.parse("\(IPv4Address(value: range.address.value + UInt32(vlan) << 8))/24") else { return nil }
        return slice
    }

    public func validate(_ validator: inout Validator) {
        validator.cidr(cidr, at: [.key("cidr")], prefixes: 8...29)
        validator.range(vlan, 1...4094, at: [.key("vlan")])
        if let bridge {
            let ok = !bridge.isEmpty && bridge.utf8.count <= 15
                && bridge.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }
            if !ok { validator.fail([.key("bridge")], "expected a Linux interface name (1–15 letters, digits, '-', '_', '.'), got \"\(bridge)\"") }
        }
        for (index, server) in (dns ?? []).enumerated() { validator.ipv4(server, at: [.key("dns"), .index(index)]) }
    }
}
