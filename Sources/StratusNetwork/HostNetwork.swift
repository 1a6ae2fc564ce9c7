import Foundation

/// What one node's kernel must hold for one network: a bridge with the gateway address and
/// the network's segment interface enslaved to it.
public struct NetworkIntent: Sendable, Equatable, Codable {
    /// The network's name, for logs and errors (`acme/default`).
    public var name: String
    /// `br<N>`.
    public var bridge: String
    public var segment: Segment
    /// The gateway address with its prefix (`10.0.5.1/24`).
    public var gateway: String

    public init(name: String, bridge: String, segment: Segment, gateway: String) {
        self.name = name
        self.bridge = bridge
        self.segment = segment
        self.gateway = gateway
    }
}

/// How a network's traffic leaves the node.
public enum Segment: Sendable, Equatable, Codable {
    /// 802.1Q on a physical interface (the seed's way; needs the 8021q module).
    case vlan(id: Int, parent: String)
    /// VXLAN (for hosts without 8021q, and L3 fabrics); `device` is the underlay interface.
    case vxlan(id: Int, device: String)

    /// The interface's name: `eth0.100` or `vx100` (at most 15 characters, the kernel's limit).
    public var interface: String {
        switch self {
        case .vlan(let id, let parent): "\(parent.prefix(15 - String(id).count - 1)).\(id)"
        case .vxlan(let id, _): "vx\(id)"
        }
    }

    /// The kernel's `info_kind` of the interface.
    var kind: String {
        switch self {
        case .vlan: "vlan"
        case .vxlan: "vxlan"
        }
    }

    var id: Int {
        switch self {
        case .vlan(let id, _), .vxlan(let id, _): id
        }
    }
}

/// One link as the kernel reports it (`ip -json -d link show`, `ip -json address show`).
public struct ObservedLink: Sendable, Equatable {
    public var name: String
    /// `bridge`, `vlan`, `vxlan`, `veth`, … (nil for a plain device).
    public var kind: String?
    /// The VLAN id or VNI.
    public var segmentId: Int?
    public var master: String?
    /// Administratively up (`UP` among its flags).
    public var up: Bool
    /// Addresses with prefixes (`10.0.5.1/24`).
    public var addresses: [String]
}

/// What the node's kernel can do, found out at start.
public struct NetworkCapabilities: Sendable, Equatable {
    /// Whether 802.1Q VLAN interfaces can be made (this host's kernel has no 8021q).
    public var vlan: Bool
    /// Why not, in words for the node's status.
    public var vlanReason: String?

    public init(vlan: Bool, vlanReason: String?) {
        self.vlan = vlan
        self.vlanReason = vlanReason
    }
}

/// A node's networking: observed from the kernel, never from memory, and converged in batches.
public protocol HostNetwork: Sendable {
    /// Every link of the namespace, by name.
    func observe() async throws -> [String: ObservedLink]
    /// Makes the kernel hold every intent (missing links made, wrong masters, addresses and
    /// states put right) and returns what it changed, one line per change; nothing when all
    /// was in place.
    func converge(_ intents: [NetworkIntent]) async throws -> [String]
    /// Removes the bridges and segment interfaces of networks this node no longer needs.
    func remove(_ intents: [NetworkIntent]) async throws -> [String]
    func capabilities() async -> NetworkCapabilities
}

/// A failure of the host's networking, with what the kernel said.
public struct HostNetworkError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
