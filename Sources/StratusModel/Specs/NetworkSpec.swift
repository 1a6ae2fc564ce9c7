/// A project's layer-2 network: a VLAN, a bridge on every node, a subnet and DHCP.
public struct NetworkSpec: SpecBody {
    public static let kind = Kind.network

    public var cidr: String
    /// The 802.1Q tag; allocated from the pool when absent.
    public var vlan: Int?
    /// The bridge name; `br<vlan>` when absent.
    public var bridge: String?
    public var dhcp: Bool?
    public var dns: [String]?

    public init(cidr: String, vlan: Int? = nil, bridge: String? = nil, dhcp: Bool? = nil, dns: [String]? = nil) {
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
