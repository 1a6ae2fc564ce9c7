import Foundation
import Logging
import StratusModel
import StratusNetwork
import StratusStore

/// The node's packet filter, kept equal to the store: every instance's security groups,
/// elastic addresses' NAT, the metadata redirect and isolation between networks, rendered whole
/// (`NFTRuleset`) and replaced atomically in the kernel whenever what the store says, or what
/// the kernel lists, differs from the last convergence.
///
/// Reconcilers of networks, addresses and security groups ask it to converge; asks that
/// arrive while one runs are answered by the next run, so 1,000 associations cost a few
/// replacements, not 1,000.
public actor HostFirewall {
    let store: Store
    let firewall: LinuxFirewall
    let node: String
    let privateRange: String
    let metadata: MetadataTarget?
    let logger: Logger

    /// The script last applied, and how the kernel listed the tables right after.
    private var applied: (script: String, listed: String)?
    private var requested = 0
    private var completed = 0
    private var running = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    /// What recent runs ended with, by the last ask each covered.
    private var outcomes: [(covering: Int, outcome: Result<Bool, any Error>)] = []
    /// Bridges whose `route_localnet` the kernel was seen to hold.
    private var localRouting: Set<String> = []
    private var lastRun: ContinuousClock.Instant?

    /// Whether instances on one bridge are filtered from each other (br_netfilter is loaded).
    public nonisolated var filtersBridgedTraffic: Bool { firewall.filtersBridgedTraffic }

    public init(store: Store, firewall: LinuxFirewall, node: String, privateRange: String, metadata: MetadataTarget?, logger: Logger = Logger(label: "stratus.firewall")) {
        self.store = store
        self.firewall = firewall
        self.node = node
        self.privateRange = privateRange
        self.metadata = metadata
        self.logger = logger
    }

    /// Makes the kernel hold what the store says now; returns whether the tables were replaced
    /// by the run that covered this ask. Throws what that run failed with.
    @discardableResult
    public func converge(unlessWithin recent: Duration? = nil) async throws -> Bool {
        if let recent, let last = lastRun, ContinuousClock.now - last < recent, !running { return false }
        requested += 1
        let mine = requested
        while completed < mine {
            if running {
                await withCheckedContinuation { waiters.append($0) }
                continue
            }
            running = true
            lastRun = ContinuousClock.now
            let covering = requested
            let outcome: Result<Bool, any Error>
            do { outcome = .success(try await convergeOnce()) } catch { outcome = .failure(error) }
            outcomes.append((covering, outcome))
            if outcomes.count > 64 { outcomes.removeFirst(outcomes.count - 64) }
            completed = covering
            running = false
            let woken = waiters
            waiters = []
            for waiter in woken { waiter.resume() }
        }
        // The first run that started after this ask is the one that answers it.
        guard let answer = outcomes.first(where: { $0.covering >= mine }) else { return false }
        return try answer.outcome.get()
    }

    private func convergeOnce() async throws -> Bool {
        let wanted = try intent()
        let bridges = wanted.bridges
        let script = NFTRuleset.render(wanted)
        if metadata?.ip.hasPrefix("127.") == true {
            // A bridge made after the last run needs route_localnet even when the script is the same.
            let missing = bridges.filter { !localRouting.contains($0) }
            if !missing.isEmpty { localRouting.formUnion(try await firewall.enableForwarding(bridges: missing, localMetadata: true)) }
        }
        // The kernel is looked at only when the script is what was applied last: then a
        // difference can only be a change by hand. A new script is applied in any case.
        if let applied, applied.script == script {
            guard try await firewall.observe() != applied.listed else { return false }
            logger.warning("the packet filter was changed outside Stratus; putting it back", metadata: ["stratus.node": "\(node)"])
        }
        if metadata?.ip.hasPrefix("127.") != true { _ = try await firewall.enableForwarding(bridges: [], localMetadata: false) }
        try await firewall.apply(script)
        applied = (script, try await firewall.observe())
        return true
    }

    /// What the filter must hold, from the store.
    func intent() throws -> FirewallIntent {
        let networks = try store.list(kind: .network).filter { !$0.isTerminating }
        var bridges: [String] = []
        for network in networks {
            guard case .network(let spec) = network.resource.spec else { continue }
            // A network being converged for the first time has its VLAN, not yet a status.
            let vlan = try spec.vlan.map(String.init) ?? store.allocation(pool: NetworkReconciler.vlanPool, owner: network.key)
            if let bridge = spec.bridge ?? network.resource.status?.details["bridge"]?.stringValue ?? vlan.map({ "br\($0)" }) { bridges.append(bridge) }
        }
        let groups = try store.list(kind: .securityGroup).filter { !$0.isTerminating }
        var rulesByGroup: [ResourceKey: [IngressRule]] = [:]
        for group in groups {
            if case .securityGroup(let spec) = group.resource.spec { rulesByGroup[group.key] = spec.ingress ?? [] }
        }
        struct Guarded {
            var key: ResourceKey
            var id: String
            var mac: String
            var ip: String
            var groups: [String]
        }
        var guarded: [Guarded] = []
        var ipByInstance: [ResourceKey: String] = [:]
        for instance in try store.list(kind: .instance) where !instance.isTerminating {
            guard case .instance(let spec) = instance.resource.spec, let id = instance.metadata.id else { continue }
            let details = InstanceDetails(instance.resource.status)
            guard let mac = details.mac, let ip = details.ip, details.node == nil || details.node == node else { continue }
            ipByInstance[instance.key] = ip
            guarded.append(Guarded(key: instance.key, id: id, mac: mac, ip: ip, groups: spec.securityGroups ?? ["default"]))
        }
        var members: [ResourceKey: [String]] = [:]  // group → its instances' IPs
        for instance in guarded {
            for group in instance.groups { members[ResourceKey(kind: .securityGroup, project: instance.key.project, name: group), default: []].append(instance.ip) }
        }
        let instances = guarded.map { instance in
            var ingress: [FilterRule] = []
            for group in instance.groups {
                for rule in rulesByGroup[ResourceKey(kind: .securityGroup, project: instance.key.project, name: group)] ?? [] {
                    let sources: [String]
                    if let source = rule.sourceGroup {
                        sources = members[ResourceKey(kind: .securityGroup, project: instance.key.project, name: source)] ?? []
                    } else {
                        sources = [rule.cidr ?? "0.0.0.0/0"]
                    }
                    guard !sources.isEmpty else { continue }
                    let proto: String? = rule.protocol == .all ? nil : rule.protocol.rawValue
                    var ports: ClosedRange<Int>?
                    var code: Int?
                    if rule.protocol == .icmp {
                        // EC2's ICMP rules: fromPort is the type, toPort the code (-1: any).
                        if let type = rule.fromPort, type >= 0 { ports = type...type }
                        code = rule.toPort.flatMap { $0 >= 0 ? $0 : nil }
                    } else if let from = rule.fromPort {
                        ports = from...max(rule.toPort ?? from, from)
                    }
                    ingress.append(FilterRule(proto: proto, ports: ports, icmpCode: code, sources: sources))
                }
            }
            return GuardedInstance(id: instance.id, port: InstanceDetails.port(instanceId: instance.id), mac: instance.mac, ip: instance.ip, ingress: ingress)
        }
        var elastic: [ElasticMapping] = []
        for address in try store.list(kind: .address) where !address.isTerminating {
            guard case .address(let spec) = address.resource.spec, let name = spec.instance,
                  let privateIp = ipByInstance[ResourceKey(kind: .instance, project: address.key.project, name: name)],
                  // What the address holds, never what its spec claims: a claim another holds is not its.
                  let publicIp = try store.allocation(pool: Store.publicIpPool, owner: address.key)
            else { continue }
            elastic.append(ElasticMapping(publicIp: publicIp, privateIp: privateIp))
        }
        return FirewallIntent(bridges: bridges, privateRange: privateRange, metadata: metadata, elastic: elastic, instances: instances, portPattern: InstanceDetails.portPattern)
    }
}
