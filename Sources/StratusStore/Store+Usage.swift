import Foundation
import GRDB
import StratusModel

/// What the nodes offer and what is placed on them, and what each project uses of its quotas:
/// the figures of `stratus top`, the dashboard's overview and `get nodes`' ALLOCATED.
public struct UsageReport: Codable, Sendable, Equatable {
    public var nodes: [NodeUsage]
    public var projects: [ProjectUsage]

    public init(nodes: [NodeUsage], projects: [ProjectUsage]) {
        self.nodes = nodes
        self.projects = projects
    }
}

/// One node: its capacity as its agent reported it, and what the instances placed there take.
public struct NodeUsage: Codable, Sendable, Equatable {
    public var name: String
    public var ready: Bool
    public var cordoned: Bool
    public var vcpus: Int
    public var memoryMB: Int
    public var instances: Int
    public var allocatedVcpus: Int
    public var allocatedMemoryMB: Int
}

/// One project's quota table.
public struct ProjectUsage: Codable, Sendable, Equatable {
    public var project: String
    public var quotas: [QuotaLine]
}

extension Store {
    /// What the instances placed on each node take, by node name, counted by SQLite in one read
    /// (a terminating instance still holds its node until its domain is gone, as the scheduler counts it).
    public func nodeAllocations() throws -> [String: (instances: Int, vcpus: Int, memoryMB: Int)] {
        try reading { db in
            var allocations: [String: (instances: Int, vcpus: Int, memoryMB: Int)] = [:]
            let rows = try Row.fetchAll(db.cachedStatement(sql: """
                SELECT json_extract(i.status, '$.details.node') AS node, COUNT(*),
                    COALESCE(SUM(json_extract(t.spec, '$.vcpus')), 0), COALESCE(SUM(json_extract(t.spec, '$.memoryMB')), 0)
                FROM resource i LEFT JOIN resource t ON t.kind = 'InstanceType' AND t.project = '' AND t.name = json_extract(i.spec, '$.instanceType')
                WHERE i.kind = 'Instance' AND node IS NOT NULL GROUP BY node
                """))
            for row in rows { allocations[row[0]] = (row[1], row[2], row[3]) }
            return allocations
        }
    }

    /// The usage report: every node (when `nodes`), and the given projects' quota tables.
    public func usage(projects: [String], nodes includeNodes: Bool) throws -> UsageReport {
        var nodes: [NodeUsage] = []
        if includeNodes {
            let allocations = try nodeAllocations()
            for node in try list(kind: .node) {
                let details = node.resource.status?.details ?? [:]
                let allocated = allocations[node.key.name] ?? (0, 0, 0)
                var cordoned = false
                if case .node(let spec) = node.resource.spec { cordoned = spec.cordoned ?? false }
                nodes.append(NodeUsage(
                    name: node.key.name, ready: node.resource.status?.condition(.ready)?.status == .true, cordoned: cordoned,
                    vcpus: details["vcpus"]?.intValue ?? 0, memoryMB: details["memoryMB"]?.intValue ?? 0,
                    instances: allocated.instances, allocatedVcpus: allocated.vcpus, allocatedMemoryMB: allocated.memoryMB))
            }
        }
        let quotas = try projects.compactMap { project in try quotaUsage(project: project).map { ProjectUsage(project: project, quotas: $0) } }
        return UsageReport(nodes: nodes, projects: quotas)
    }
}
