import StratusModel
import StratusStore

/// The columns `stratus get` shows for each kind.
enum ResourceColumns {
    /// Headers and cells for a list of one kind; `wide` adds generation, apply set and labels.
    ///
    /// A project-scoped kind shows its PROJECT after the NAME, or before it with `projectFirst`
    /// (`-A`, as kubectl puts NAMESPACE first).
    static func table(_ resources: [StoredResource], kind: Kind, wide: Bool, projectFirst: Bool = false) -> Table {
        let projectFirst = projectFirst && kind.scope == .project
        var headers = projectFirst ? ["PROJECT", "NAME"] : ["NAME"]
        if kind.scope == .project && !projectFirst { headers.append("PROJECT") }
        if kind.idPrefix != nil { headers.append("ID") }
        headers += specific(kind).map(\.0) + ["STATUS", "AGE"]
        if wide { headers += ["GENERATION", "SET", "LABELS"] }
        var table = Table(headers: headers)
        for stored in resources {
            var row = projectFirst ? [stored.key.project, stored.metadata.name] : [stored.metadata.name]
            if kind.scope == .project && !projectFirst { row.append(stored.key.project) }
            if kind.idPrefix != nil { row.append(stored.metadata.id ?? "-") }
            row += specific(kind).map { $0.1(stored) }
            row += [stored.displayPhase, stored.metadata.creationTimestamp.map { Timestamp.age(since: $0) } ?? "-"]
            if wide {
                let labels = stored.metadata.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
                row += [String(stored.generation), stored.metadata.applySet ?? "-", labels.isEmpty ? "-" : labels]
            }
            table.rows.append(row)
        }
        return table
    }

    private static func detail(_ stored: StoredResource, _ key: String) -> String {
        stored.resource.status?.details[key]?.displayText ?? "-"
    }

    private static func specific(_ kind: Kind) -> [(String, (StoredResource) -> String)] {
        switch kind {
        case .user:
            return [
                ("ROLES", { if case .user(let s) = $0.resource.spec { return join(s.roles?.map(\.rawValue)) }; return "-" }),
                ("PROJECTS", { if case .user(let s) = $0.resource.spec { return join(s.projects?.map(\.project)) }; return "-" }),
            ]
        case .project:
            return [("MANAGER", { if case .project(let s) = $0.resource.spec { return s.manager }; return "-" })]
        case .keyPair:
            return [
                ("EC2-NAME", { EC2Name.of($0.resource.metadata) }),
                ("SOURCE", { if case .keyPair(let s) = $0.resource.spec { return s.publicKey == nil ? "generated" : "imported" }; return "-" }),
            ]
        case .network:
            return [
                ("CIDR", { if case .network(let s) = $0.resource.spec { return s.subnet($0.resource.status) ?? "-" }; return "-" }),
                ("VLAN", { if case .network(let s) = $0.resource.spec { return s.vlan.map(String.init) ?? detail($0, "vlan") }; return "-" }),
                ("BRIDGE", { detail($0, "bridge") }),
                ("SEGMENT", { detail($0, "segment") }),
            ]
        case .securityGroup:
            return [
                ("EC2-NAME", { EC2Name.of($0.resource.metadata) }),
                ("RULES", { if case .securityGroup(let s) = $0.resource.spec { return String(s.ingress?.count ?? 0) }; return "-" }),
            ]
        case .address:
            return [
                ("PUBLIC-IP", { if case .address(let s) = $0.resource.spec { return s.publicIp ?? detail($0, "publicIp") }; return "-" }),
                ("INSTANCE", { if case .address(let s) = $0.resource.spec { return s.instance ?? "-" }; return "-" }),
                ("PRIVATE-IP", { detail($0, "privateIp") }),
            ]
        case .image:
            return [
                ("FORMAT", { if case .image(let s) = $0.resource.spec { return s.format?.rawValue ?? "-" }; return "-" }),
                ("PUBLIC", { if case .image(let s) = $0.resource.spec { return String(s.public ?? false) }; return "-" }),
                ("SOURCE", { if case .image(let s) = $0.resource.spec { return s.source }; return "-" }),
            ]
        case .instanceType:
            return [
                ("MEMORY-MB", { if case .instanceType(let s) = $0.resource.spec { return String(s.memoryMB) }; return "-" }),
                ("VCPUS", { if case .instanceType(let s) = $0.resource.spec { return String(s.vcpus) }; return "-" }),
                ("DISK-GB", { if case .instanceType(let s) = $0.resource.spec { return String(s.diskGB) }; return "-" }),
            ]
        case .instance:
            return [
                ("IMAGE", { if case .instance(let s) = $0.resource.spec { return s.image }; return "-" }),
                ("TYPE", { if case .instance(let s) = $0.resource.spec { return s.instanceType }; return "-" }),
                ("POWER", { if case .instance(let s) = $0.resource.spec { return s.powerState?.rawValue ?? "-" }; return "-" }),
                ("NODE", { detail($0, "node") }),
            ]
        case .volume:
            return [
                ("SIZE-GB", { if case .volume(let s) = $0.resource.spec { return String(s.sizeGB) }; return "-" }),
                ("ATTACHED-TO", { if case .volume(let s) = $0.resource.spec { return s.attachment.map { "\($0.instance):\($0.device ?? "")" } ?? "-" }; return "-" }),
                ("AOE", { detail($0, "aoe") }),
                ("STORAGE-NODE", { detail($0, "storageNode") }),
            ]
        case .snapshot:
            return [
                ("VOLUME", { if case .snapshot(let s) = $0.resource.spec { return s.volume }; return "-" }),
                ("SIZE-GB", { detail($0, "sizeGB") }),
                ("COPY", { detail($0, "copy") }),
            ]
        case .node:
            return [
                ("ZONE", { if case .node(let s) = $0.resource.spec { return s.zone ?? "-" }; return "-" }),
                ("CORDONED", { if case .node(let s) = $0.resource.spec { return String(s.cordoned ?? false) }; return "-" }),
                ("VCPUS", { detail($0, "vcpus") }),
                ("MEMORY-MB", { detail($0, "memoryMB") }),
                // What the instances placed there take (`NodeAllocation`, counted by `get`).
                ("ALLOCATED", { node in
                    guard let details = node.resource.status?.details, let vcpus = details["allocatedVcpus"]?.displayText, let memory = details["allocatedMemoryMB"]?.displayText else { return "-" }
                    return "\(details["instances"]?.displayText ?? "0") inst, \(vcpus) vCPU, \(memory) MB"
                }),
                // An agent's last heartbeat as of the node's last reconcile (one process has none).
                ("HEARTBEAT", { $0.resource.status?.details["lastHeartbeat"]?.stringValue.map { Timestamp.age(since: $0) + " ago" } ?? "-" }),
                ("VERSION", { detail($0, "version") }),
            ]
        case .gitSync:
            return [
                ("REPOSITORY", { if case .gitSync(let s) = $0.resource.spec { return s.repository }; return "-" }),
                ("REF", { if case .gitSync(let s) = $0.resource.spec { return s.ref ?? "HEAD" }; return "-" }),
                ("REVISION", { $0.resource.status?.details["lastSyncedRevision"]?.stringValue.map { String($0.prefix(12)) } ?? "-" }),
                ("SYNCED", { $0.resource.status?.condition(.synced).map { $0.status == .true ? "True" : "False (\($0.reason.rawValue))" } ?? "-" }),
                ("HEALTH", { detail($0, "health") }),
            ]
        }
    }

    private static func join(_ values: [String]?) -> String {
        guard let values, !values.isEmpty else { return "-" }
        return values.joined(separator: ",")
    }
}
