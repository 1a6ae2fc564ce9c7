import StratusModel
import StratusStore

/// What the instances placed on each node take of it, as `kubectl describe node` shows its
/// allocated resources: counted by the store when asked (`UsageReport`), so it is never older
/// than the listing itself. Nodes only cloud administrators and itsec see whole; for anyone
/// else the server sends no node figures and ALLOCATED stays `-`.
enum NodeAllocation {
    /// The nodes with `allocatedVcpus`, `allocatedMemoryMB` and `instances` in their status details.
    static func annotate(_ nodes: [StoredResource], backend: any Backend) async throws -> [StoredResource] {
        guard !nodes.isEmpty else { return nodes }
        let usage = try await backend.usage(project: nil)
        let byName = Dictionary(usage.nodes.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        return nodes.map { node in
            guard let used = byName[node.key.name] else { return node }
            var node = node
            var status = node.resource.status ?? ResourceStatus()
            status.details["allocatedVcpus"] = .string("\(used.allocatedVcpus)")
            status.details["allocatedMemoryMB"] = .string("\(used.allocatedMemoryMB)")
            status.details["instances"] = .string("\(used.instances)")
            node.resource.status = status
            return node
        }
    }
}
