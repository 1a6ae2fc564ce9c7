/// An IPv4 address.
public struct IPv4Address: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var value: UInt32

    public init(value: UInt32) { self.value = value }

    /// Parses a dotted quad; rejects leading zeros and out-of-range octets.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCII), let octet = UInt32(part), octet <= 255,
                part.count == 1 || part.first != "0"
            else { return nil }
            value = value << 8 | octet
        }
        self.value = value
    }

    public var description: String {
        "\(value >> 24).\(value >> 16 & 255).\(value >> 8 & 255).\(value & 255)"
    }

    public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.value < rhs.value }
}

/// An IPv4 network in CIDR form.
public struct IPv4Network: Sendable, Hashable, CustomStringConvertible {
    public var address: IPv4Address
    public var prefix: Int

    /// Why a text is not a CIDR, and what was probably meant.
    public struct Problem: Error, Sendable {
        public var message: String
        public var hint: String?
    }

    /// Parses `10.0.0.0/24`, explaining what is wrong otherwise.
    public static func parse(_ text: String) -> Result<IPv4Network, Problem> {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            return .failure(Problem(message: "expected a CIDR like 10.0.0.0/24", hint: nil))
        }
        guard let address = IPv4Address(String(parts[0])) else {
            return .failure(Problem(message: "expected a CIDR like 10.0.0.0/24 (the address part is not IPv4)", hint: nil))
        }
        guard let prefix = Int(parts[1]), (0...32).contains(prefix), parts[1].allSatisfy(\.isASCII) else {
            return .failure(Problem(message: "expected a prefix length between 0 and 32", hint: nil))
        }
        let network = IPv4Network(address: IPv4Address(value: address.value & mask(prefix)), prefix: prefix)
        if network.address != address {
            return .failure(Problem(message: "the address has host bits set", hint: "did you mean \(network)?"))
        }
        return .success(network)
    }

    private static func mask(_ prefix: Int) -> UInt32 { prefix == 0 ? 0 : UInt32.max << UInt32(32 - prefix) }

    /// Whether the address lies inside this network.
    public func contains(_ other: IPv4Address) -> Bool {
        other.value & Self.mask(prefix) == address.value
    }

    public var description: String { "\(address)/\(prefix)" }

    /// The gateway: the first host address (the bridge's, where DHCP and the metadata redirect live).
    public var gateway: IPv4Address { IPv4Address(value: address.value &+ 1) }

    /// The addresses instances get, in order: from `.3` to the last before the broadcast address.
    /// As in Nova, the network address, the gateway `.1` and `.2` (its VPN's) are never handed out.
    public var instanceAddresses: AnySequence<IPv4Address> {
        let size = UInt64(1) << UInt64(32 - prefix)
        guard size >= 8 else { return AnySequence([]) }
        let base = address.value
        return AnySequence((UInt32(3)...UInt32(size - 2)).lazy.map { IPv4Address(value: base &+ $0) })
    }

    /// Every host address, in order: all but the network and broadcast addresses (a /31 or
    /// /32 has none to spare). The pool of elastic addresses.
    public var hostAddresses: AnySequence<IPv4Address> {
        let size = UInt64(1) << UInt64(32 - prefix)
        let base = address.value
        guard size >= 4 else { return AnySequence((0..<UInt32(size)).lazy.map { IPv4Address(value: base &+ $0) }) }
        return AnySequence((UInt32(1)...UInt32(size - 2)).lazy.map { IPv4Address(value: base &+ $0) })
    }
}
