import Foundation
import StratusModel
import StratusStore

/// Places instances on nodes by free memory and vCPUs within the requested zone.
///
/// An actor, so two instances reconciled at once cannot both take the last free slot: each
/// choice is kept in memory at once (and survives rebuilds from the store until the instance's
/// status records it in `details.node`).
///
/// Like Nova's scheduler, capacity is overcommitted by each node's `ramAllocationRatio` (default
/// 1.5) and `cpuAllocationRatio` (default 16), Nova's defaults.
public actor Scheduler {
    private let store: Store

    public init(store: Store) { self.store = store }

    /// Why an instance fits nowhere, with the numbers a user needs.
    public struct Unschedulable: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// What each placed instance takes, by node, and the nodes; rebuilt from the store at most every `refreshInterval`
    /// (placements made here are added at once, so the actor never double-books between rebuilds).
    private var placed: [ResourceKey: (node: String, memory: Int, vcpus: Int)] = [:] {
        didSet { usageIsCurrent = false }
    }
    /// Per-node totals of `placed`, recomputed only after `placed` changed in bulk.
    private var usage: [String: (memory: Int, vcpus: Int)] = [:]
    private var usageIsCurrent = false
    private var nodes: [StoredResource] = []
    private var builtAt: ContinuousClock.Instant?
    private let refreshInterval: Duration = .seconds(5)

    private func refreshUsage() throws {
        if let builtAt, ContinuousClock.now - builtAt < refreshInterval { return }
        let types = Dictionary(try store.list(kind: .instanceType).compactMap { stored -> (String, InstanceTypeSpec)? in
            guard case .instanceType(let spec) = stored.resource.spec else { return nil }
            return (stored.key.name, spec)
        }, uniquingKeysWith: { first, _ in first })
        // Placements made here but not yet in the store (their reconcile has not finished) are kept.
        let previous = placed
        placed = [:]
        nodes = try store.list(kind: .node).filter { !$0.isTerminating }
        var existing = Set<ResourceKey>()
        for other in try store.instancePlacements() {
            existing.insert(other.key)
            guard let node = other.node, let otherType = types[other.instanceType] else { continue }
            placed[other.key] = (node, otherType.memoryMB, otherType.vcpus)
        }
        // And so are those that move an instance (rescheduled, drained) until its status names the new node.
        for (key, placement) in previous where existing.contains(key) && placed[key]?.node != placement.node { placed[key] = placement }
        builtAt = .now
    }

    /// Forgets a deleted instance's placement.
    public func release(_ key: ResourceKey) { placed[key] = nil }

    private func currentUsage() -> [String: (memory: Int, vcpus: Int)] {
        if !usageIsCurrent {
            usage = [:]
            for placement in placed.values {
                usage[placement.node, default: (0, 0)].memory += placement.memory
                usage[placement.node, default: (0, 0)].vcpus += placement.vcpus
            }
            usageIsCurrent = true
        }
        return usage
    }

    /// The node an instance runs on: the one already recorded, or the emptiest that fits.
    ///
    /// - Parameter avoiding: nodes it may not go to (the lost node it is rescheduled from): a
    ///   placement on one of them is dropped and another node chosen.
    public func place(_ instance: StoredResource, needs type: InstanceTypeSpec, zone: String?, avoiding: Set<String> = []) throws -> String {
        if let node = InstanceDetails(instance.resource.status).node, !avoiding.contains(node) { return node }
        if let placement = placed[instance.key] {
            if !avoiding.contains(placement.node) { return placement.node }
            placed[instance.key] = nil
        }
        try refreshUsage()
        // The node list may be up to `refreshInterval` old: the chosen node is read again, and a
        // node cordoned or lost since makes the list be read anew (a cordon holds at once).
        for _ in 0..<2 {
            let node: String
            do {
                node = try choose(type, zone: zone, avoiding: avoiding)
            } catch let unschedulable as Unschedulable {
                // A node uncordoned or back since the list was read would fit: read it again once
                // (not more than twice a second, so many instances that fit nowhere stay cheap).
                guard let read = builtAt, ContinuousClock.now - read > .milliseconds(500) else { throw unschedulable }
                builtAt = nil
                try refreshUsage()
                node = try choose(type, zone: zone, avoiding: avoiding)
            }
            if let current = try store.get(ResourceKey(kind: .node, project: nil, name: node)), Self.schedulable(current) {
                commit(instance.key, on: node, type)
                return node
            }
            builtAt = nil
            try refreshUsage()
        }
        let node = try choose(type, zone: zone, avoiding: avoiding)
        commit(instance.key, on: node, type)
        return node
    }

    /// Whether a node may take new instances: not cordoned, not being deleted, and not Ready=False.
    static func schedulable(_ node: StoredResource) -> Bool {
        guard !node.isTerminating, case .node(let spec) = node.resource.spec, spec.cordoned != true else { return false }
        return node.resource.status?.conditions.first(where: { $0.type == .ready })?.status != .false
    }

    private func commit(_ key: ResourceKey, on node: String, _ type: InstanceTypeSpec) {
        // Remembered here at once; the reconcile records it in the instance's status.
        placed[key] = (node, type.memoryMB, type.vcpus)
        usage[node, default: (0, 0)].memory += type.memoryMB
        usage[node, default: (0, 0)].vcpus += type.vcpus
        usageIsCurrent = true
    }

    /// The emptiest node of the current list that fits, or why none does.
    private func choose(_ type: InstanceTypeSpec, zone: String?, avoiding: Set<String>) throws -> String {
        let used = currentUsage()  // the instance itself is not placed yet (checked above)
        var candidates: [(name: String, freeMemory: Int, freeVCPUs: Int)] = []
        var rejected: [String] = []
        for node in nodes {
            guard case .node(let spec) = node.resource.spec else { continue }
            let name = node.key.name
            if avoiding.contains(name) { rejected.append("\(name): being left"); continue }
            if spec.cordoned == true { rejected.append("\(name): cordoned"); continue }
            if let zone, spec.zone != zone { rejected.append("\(name): zone \(spec.zone ?? "?")"); continue }
            if spec.roles?.contains(.compute) == false { rejected.append("\(name): not a compute node"); continue }
            if let ready = node.resource.status?.conditions.first(where: { $0.type == .ready }), ready.status == .false {
                rejected.append("\(name): not ready (\(ready.reason.rawValue))")
                continue
            }
            guard let details = node.resource.status?.details, case .int(let memory)? = details["memoryMB"], case .int(let vcpus)? = details["vcpus"] else {
                builtAt = nil  // look again next time: the node agent may report any moment
                rejected.append("\(name): capacity not reported yet")
                continue
            }
            let freeMemory = Int(Double(memory) * (spec.ramAllocationRatio ?? 1.5)) - used[name, default: (0, 0)].memory
            let freeVCPUs = Int(Double(vcpus) * (spec.cpuAllocationRatio ?? 16)) - used[name, default: (0, 0)].vcpus
            if freeMemory >= type.memoryMB && freeVCPUs >= type.vcpus {
                candidates.append((name, freeMemory, freeVCPUs))
            } else {
                rejected.append("\(name): \(freeMemory) MB and \(freeVCPUs) vCPUs free")
            }
        }
        guard let best = candidates.max(by: { ($0.freeMemory, $0.freeVCPUs, $1.name) < ($1.freeMemory, $1.freeVCPUs, $0.name) }) else {
            let where_ = zone.map { " in zone \($0)" } ?? ""
            let detail = rejected.isEmpty ? "no nodes are registered" : rejected.joined(separator: "; ")
            throw Unschedulable(description: "no node\(where_) has \(type.memoryMB) MB and \(type.vcpus) vCPUs free (\(detail))")
        }
        return best.name
    }
}
