import StratusModel
import StratusStore

/// What the instances placed on each node take of it, as `kubectl describe node` shows its
/// allocated resources: counted when asked, from the instances and their types, so it is never
/// older than the listing itself. It counts the instances the caller may see: all of them for a
/// cloud administrator, who is who `get nodes` is for.
enum NodeAllocation {
    /// The nodes with `allocatedVcpus`, `allocatedMemoryMB` and `instances` in their status details.
    static func annotate(_ nodes: [StoredResource], backend: any Backend) async throws -> [StoredResource] {
        guard !nodes.isEmpty else { return nodes }
        var types: [String: InstanceTypeSpec] = [:]
        for stored in try await backend.list(kind: .instanceType, project: nil) {
            if case .instanceType(let spec) = stored.resource.spec { types[stored.key.name] = spec }
        }
        var used: [String: (vcpus: Int, memoryMB: Int, count: Int)] = [:]
        // A terminating instance still holds its node until its domain is gone, as the scheduler counts it.
        for instance in try await backend.list(kind: .instance, project: nil) {
            guard case .instance(let spec) = instance.resource.spec, let node = instance.resource.status?.details["node"]?.stringValue else { continue }
            let type = types[spec.instanceType]
            used[node, default: (0, 0, 0)].vcpus += type?.vcpus ?? 0
            used[node, default: (0, 0, 0)].memoryMB += type?.memoryMB ?? 0
            used[node, default: (0, 0, 0)].count += 1
        }
        return nodes.map { node in
            var node = node
            let total = used[node.key.name] ?? (0, 0, 0)
            var status = node.resource.status ?? ResourceStatus()
            status.details["allocatedVcpus"] = .string("\(total.vcpus)")
            status.details["allocatedMemoryMB"] = .string("\(total.memoryMB)")
            status.details["instances"] = .string("\(total.count)")
            node.resource.status = status
            return node
        }
    }
}
