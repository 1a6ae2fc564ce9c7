import Foundation
import Logging
import StratusCompute
import StratusModel
import StratusNetwork
import StratusStore
import Synchronization

/// Converges Networks: a VLAN id from the pool (100–4093) unless the spec names one, the bridge
/// `br<vlan>`, and — when this server manages the host's networking (`--host-network on`) —
/// the bridge, its gateway and its segment in the kernel (`HostNetwork`) and a DHCP server for
/// the network's instances (`DHCPServer`). Without host networking a network still gets its
/// VLAN and bridge name (instances are addressed from them) and says why nothing more happens.
public struct NetworkReconciler: Reconciler {
    public let name = "network"
    public let kinds: Set<Kind> = [.network]
    /// Many at once: their links reach the kernel together, in one `ip -batch` (`LinkBatcher`),
    /// and each then starts or reloads its own DHCP server. Wide on purpose: every dnsmasq
    /// running wakes up for each link the kernel makes (a batch of 14 networks took 1 s beside
    /// 150 of them, 0.01 s beside none), so networks made together get their links before
    /// any of their DHCP servers start.
    public let concurrency = 256

    /// How the host is managed, when it is.
    public struct Host: Sendable {
        public var network: any HostNetwork
        public var dhcp: DHCPServer
        /// `vlan`, `vxlan`, or nil to choose by what the kernel can do.
        public var segmentation: String?
        /// The interface segments ride on (`lo` for a one-host VXLAN).
        public var physicalInterface: String
        /// The node's packet filter, which knows each network's bridge.
        public var firewall: HostFirewall?

        public init(network: any HostNetwork, dhcp: DHCPServer, segmentation: String?, physicalInterface: String, firewall: HostFirewall? = nil) {
            self.network = network
            self.dhcp = dhcp
            self.segmentation = segmentation
            self.physicalInterface = physicalInterface
            self.firewall = firewall
        }
    }

    let store: Store
    public let host: Host?
    let logger: Logger
    /// What the kernel can do, probed once (a probe makes and removes links) and only when the
    /// segmentation depends on it.
    let probed = ProbedCapabilities()
    /// Gathers the links of networks reconciled at the same time into one convergence.
    let batcher: LinkBatcher?

    final class ProbedCapabilities: Sendable {
        let value = Mutex<NetworkCapabilities?>(nil)
    }
    public static let vlanPool = "vlan"
    public static let defaultPrivateRange: IPv4Network = {
        guard case .success(let range) = IPv4Network.parse("10.0.0.0/8") else { preconditionFailure("10.0.0.0/8 is a CIDR") }
        return range
    }()
    public static let vlans = 100...4093

    /// The range networks without `spec.cidr` get their /24 from, numbered by VLAN id.
    let privateRange: IPv4Network

    public init(store: Store, host: Host?, privateRange: IPv4Network = NetworkReconciler.defaultPrivateRange, logger: Logger = Logger(label: "stratus.network")) {
        self.store = store
        self.privateRange = privateRange
        self.host = host
        self.logger = logger
        self.batcher = host.map { LinkBatcher(network: $0.network) }
    }

    /// What the node's status says of its networking: whether this server manages it and, when
    /// it does, how segments are made and whether the kernel can make VLANs (found out once).
    public func nodeDetails() async -> [String: String] {
        guard let host else {
            return ["hostNetwork": "HostNetworkUnavailable: this server does not manage host networking (stratus serve --host-network on, as root); addresses are allocated, nothing is made in the kernel"]
        }
        let capabilities = await capabilities(host)
        let segmentation = host.segmentation ?? (capabilities.vlan ? "vlan" : "vxlan")
        return [
            "hostNetwork": "on: \(segmentation) over \(host.physicalInterface)",
            "vlan": capabilities.vlan ? "available" : (capabilities.vlanReason ?? "unavailable"),
        ]
    }

    /// The kernel's abilities, probed at the first ask (a probe makes and removes links).
    func capabilities(_ host: Host) async -> NetworkCapabilities {
        if let known = probed.value.withLock({ $0 }) { return known }
        let found = await host.network.capabilities()
        probed.value.withLock { $0 = found }
        return found
    }

    public func reconcile(_ resource: StoredResource) async -> ReconcileResult {
        guard case .network(let spec) = resource.resource.spec else {
            return .failed(reason: .wrongKind, message: "\(resource.key) is not a network", retryable: false)
        }
        let now = Timestamp.string(Date())
        var status = resource.resource.status ?? ResourceStatus()
        do {
            let vlan: Int
            if let fixed = spec.vlan {
                vlan = fixed
            } else if let allocated = try store.allocate(pool: Self.vlanPool, candidates: Self.vlans.lazy.map(String.init), owner: resource.key).flatMap(Int.init) {
                vlan = allocated
            } else {
                return .failed(reason: .vlanPoolExhausted, message: "every VLAN id of \(Self.vlans) is taken; delete a network or give this one spec.vlan", retryable: true)
            }
            let bridge = spec.bridge ?? "br\(vlan)"
            status.details["vlan"] = .string("\(vlan)")
            status.details["bridge"] = .string(bridge)
            let cidr: String
            if let fixed = spec.cidr {
                cidr = fixed
            } else if let slice = NetworkSpec.slice(of: privateRange, vlan: vlan) {
                cidr = slice.description
            } else {
                return .failed(reason: .hostNetworkError, message: "the private range \(privateRange) has no /24 numbered \(vlan) (VLAN \(vlan)); give spec.cidr, or a wider --private-range", retryable: false)
            }
            status.details["cidr"] = .string(cidr)
            guard let host else {
                status.phase = "Pending"
                status.setCondition(Condition(type: .ready, status: .false, reason: .hostNetworkUnavailable, message: "this server does not manage host networking (stratus serve --host-network on, as root); addresses are allocated, no bridge or DHCP is made", lastTransitionTime: now))
                return .done(status)
            }
            guard case .success(let subnet) = IPv4Network.parse(cidr) else {
                return .failed(reason: .hostNetworkError, message: "spec.cidr \(cidr) is not a network", retryable: false)
            }
            var capabilities = NetworkCapabilities(vlan: false, vlanReason: nil)
            if host.segmentation != "vxlan" { capabilities = await self.capabilities(host) }
            let useVLAN = host.segmentation == "vlan" || (host.segmentation == nil && capabilities.vlan)
            if useVLAN && !capabilities.vlan {
                status.phase = "Pending"
                status.setCondition(Condition(type: .ready, status: .false, reason: .hostNetworkUnavailable, message: capabilities.vlanReason ?? "VLANs cannot be made here", lastTransitionTime: now))
                return .done(status)
            }
            let segment: Segment = useVLAN ? .vlan(id: vlan, parent: host.physicalInterface) : .vxlan(id: vlan, device: host.physicalInterface)
            let gateway = "\(subnet.gateway)/\(subnet.prefix)"
            let intent = NetworkIntent(name: resource.key.qualifiedName, bridge: bridge, segment: segment, gateway: gateway)
            let changed: [String]
            if let batcher { changed = try await batcher.converge(intent) } else { changed = try await host.network.converge([intent]) }
            if !changed.isEmpty { logger.info("network converged", metadata: ["stratus.network": "\(resource.key)", "stratus.changes": "\(changed.joined(separator: "; "))"]) }
            status.details["segment"] = .string(useVLAN ? "vlan \(vlan) on \(host.physicalInterface)" : "vxlan \(vlan) over \(host.physicalInterface)")
            var served = 0
            if spec.dhcp != false {
                let hosts = try dhcpHosts(resource)
                served = hosts.count
                let addresses = Array(subnet.instanceAddresses)
                let netmask = IPv4Address(value: subnet.prefix == 0 ? 0 : UInt32.max << UInt32(32 - subnet.prefix))
                if let first = addresses.first, let last = addresses.last {
                    let dhcp = host.dhcp
                    let router = "\(subnet.gateway)"
                    _ = try await ChildProcess.offPool { try dhcp.converge(bridge: bridge, range: ("\(first)", "\(last)", "\(netmask)"), router: router, hosts: hosts) }
                }
            }
            // The filter knows the bridge before the network is Ready (the metadata redirect,
            // isolation). Later looks are for instances that came or went: at most one check
            // every 2 s however many networks requeue.
            if let firewall = host.firewall {
                if resource.resource.status?.phase == "Ready" { try await firewall.converge(unlessWithin: .seconds(2)) } else { try await firewall.converge() }
            }
            status.phase = "Ready"
            status.setCondition(Condition(type: .ready, status: .true, reason: .networkConverged, message: "\(bridge) with \(gateway), \(status.details["segment"]?.stringValue ?? "")\(spec.dhcp != false ? ", DHCP for \(served) instance(s)" : "")", lastTransitionTime: now))
            // Instances come and go; their DHCP entries follow at the next look (a guest's DHCP
            // client asks again every few seconds until its entry is there).
            return .requeue(status, after: .seconds(2))
        } catch {
            return .failed(reason: .hostNetworkError, message: "\(error)", retryable: true)
        }
    }

    /// The fixed addresses of the network's instances (those of its project with a MAC and an
    /// IP on it: the network they name, or the project's only one).
    func dhcpHosts(_ network: StoredResource) throws -> [DHCPHost] {
        let networks = try store.list(kind: .network, project: network.key.project).filter { !$0.isTerminating }
        return try store.list(kind: .instance, project: network.key.project).compactMap { instance in
            guard !instance.isTerminating, case .instance(let spec) = instance.resource.spec else { return nil }
            guard spec.network == network.key.name || (spec.network == nil && networks.count == 1) else { return nil }
            let details = InstanceDetails(instance.resource.status)
            guard let mac = details.mac, let ip = details.ip else { return nil }
            return DHCPHost(mac: mac, ip: ip, hostname: instance.key.name)
        }.sorted { $0.ip < $1.ip }
    }

    public func finalize(_ resource: StoredResource) async -> ReconcileResult {
        guard let host, case .network(let spec) = resource.resource.spec else { return .done(ResourceStatus()) }
        let vlan = spec.vlan ?? resource.resource.status?.details["vlan"]?.stringValue.flatMap(Int.init)
        guard let vlan else { return .done(ResourceStatus()) }
        let bridge = spec.bridge ?? "br\(vlan)"
        let dhcp = host.dhcp
        _ = try? await ChildProcess.offPool { dhcp.stop(bridge: bridge) }
        do {
            // Whichever segment it had, and the bridge once.
            _ = try await host.network.remove([
                NetworkIntent(name: resource.key.qualifiedName, bridge: bridge, segment: .vlan(id: vlan, parent: host.physicalInterface), gateway: ""),
                NetworkIntent(name: resource.key.qualifiedName, bridge: "", segment: .vxlan(id: vlan, device: host.physicalInterface), gateway: ""),
            ])
            try await host.firewall?.converge()
        } catch {
            return .failed(reason: .hostNetworkError, message: "\(error)", retryable: true)
        }
        return .done(ResourceStatus())
    }
}

/// Sends the links of every network that asks while a convergence runs to the kernel together:
/// one look at the kernel and one `ip -batch` for all of them, not one per network (200
/// networks converge in about the time of one hand-written batch, not 200 of them).
actor LinkBatcher {
    let network: any HostNetwork
    private var pending: [(intent: NetworkIntent, waiter: CheckedContinuation<[String], any Error>)] = []
    private var running = false

    init(network: any HostNetwork) {
        self.network = network
    }

    /// Converges `intent` with whatever else is pending; returns the changes that were its own.
    func converge(_ intent: NetworkIntent) async throws -> [String] {
        try await withCheckedThrowingContinuation { continuation in
            pending.append((intent, continuation))
            if !running {
                running = true
                Task { await self.drain() }
            }
        }
    }

    private func drain() async {
        while !pending.isEmpty {
            let batch = pending
            pending = []
            do {
                let changes = try await network.converge(batch.map(\.intent))
                for (intent, waiter) in batch {
                    let own = [intent.bridge + ":", intent.segment.interface + ":"]
                    waiter.resume(returning: changes.filter { change in own.contains { change.hasPrefix($0) } })
                }
            } catch {
                guard batch.count > 1 else {
                    batch[0].waiter.resume(throwing: error)
                    continue
                }
                // One network's refusal must not fail the others: each alone, then.
                for (intent, waiter) in batch {
                    do { waiter.resume(returning: try await network.converge([intent])) } catch { waiter.resume(throwing: error) }
                }
            }
        }
        running = false
    }
}

