import Foundation
import GRDB
import StratusModel

extension Store {
    /// What a project uses of each quota.
    struct QuotaUsage: Equatable, Sendable {
        var instances = 0
        var cores = 0
        var ramMB = 0
        var volumes = 0
        var gigabytes = 0
        var addresses = 0
        var securityGroups = 0

        static func + (a: QuotaUsage, b: QuotaUsage) -> QuotaUsage {
            QuotaUsage(
                instances: a.instances + b.instances, cores: a.cores + b.cores, ramMB: a.ramMB + b.ramMB, volumes: a.volumes + b.volumes,
                gigabytes: a.gigabytes + b.gigabytes, addresses: a.addresses + b.addresses, securityGroups: a.securityGroups + b.securityGroups
            )
        }

        static prefix func - (a: QuotaUsage) -> QuotaUsage {
            QuotaUsage(
                instances: -a.instances, cores: -a.cores, ramMB: -a.ramMB, volumes: -a.volumes, gigabytes: -a.gigabytes,
                addresses: -a.addresses, securityGroups: -a.securityGroups
            )
        }
    }

    /// One quota: its field in `spec.quotas`, how usage and the limit read it, and the EC2 code of its refusal.
    struct QuotaDimension: Sendable {
        var field: String
        var noun: String
        var kind: Kind
        var code: String
        var used: @Sendable (QuotaUsage) -> Int
        var limit: @Sendable (Quotas) -> Int?

        static let all: [QuotaDimension] = [
            QuotaDimension(field: "instances", noun: "instances", kind: .instance, code: "InstanceLimitExceeded", used: \.instances, limit: \.instances),
            QuotaDimension(field: "cores", noun: "cores", kind: .instance, code: "InstanceLimitExceeded", used: \.cores, limit: \.cores),
            QuotaDimension(field: "ram", noun: "MB of RAM", kind: .instance, code: "InstanceLimitExceeded", used: \.ramMB, limit: \.ram),
            QuotaDimension(field: "volumes", noun: "volumes", kind: .volume, code: "VolumeLimitExceeded", used: \.volumes, limit: \.volumes),
            QuotaDimension(field: "gigabytes", noun: "GB of volumes", kind: .volume, code: "VolumeLimitExceeded", used: \.gigabytes, limit: \.gigabytes),
            QuotaDimension(field: "addresses", noun: "addresses", kind: .address, code: "AddressLimitExceeded", used: \.addresses, limit: \.addresses),
            QuotaDimension(field: "securityGroups", noun: "security groups", kind: .securityGroup, code: "SecurityGroupLimitExceeded", used: \.securityGroups, limit: \.securityGroups),
        ]
    }

    static let quotaKinds: Set<Kind> = [.instance, .volume, .address, .securityGroup]

    /// Refuses a plan that would take a project past one of its quotas (`ProjectSpec.quotas`).
    ///
    /// Usage is what the store holds live (not being deleted) plus what the plan adds, minus
    /// what it replaces or prunes; only growth is refused, so lowering a quota below what a
    /// project uses never blocks unrelated changes. Runs in the apply's transaction, so two
    /// concurrent writers cannot both take the last unit. Each problem names the resource
    /// (file:line:column) that crosses the limit and the numbers.
    func checkQuotas(_ db: Database, _ documents: [ManifestDocument], _ plan: ApplyPlan, _ stored: [ResourceKey: SnapshotRow]) throws {
        var delta: [String: QuotaUsage] = [:]
        var growers: [String: [Kind: Int]] = [:]  // project → kind → index of the last change that adds
        var types = InstanceTypeSizes(documents: documents)
        for (index, change) in plan.changes.enumerated() where Self.quotaKinds.contains(change.key.kind) {
            let project = change.key.project
            var contribution = QuotaUsage()
            switch change.action {
            case .unchanged:
                continue
            case .create:
                contribution = try usage(of: change.newSpec, types: &types, db)
            case .update:
                let wasLive = stored[change.key].map { !$0.terminating } ?? false
                if wasLive && !change.specChanged { continue }
                contribution = try usage(of: change.newSpec, types: &types, db)
                if wasLive { contribution = contribution + -(try usage(of: change.oldSpec, types: &types, db)) }
            case .delete:
                contribution = -(try usage(of: change.oldSpec, types: &types, db))
            }
            delta[project] = (delta[project] ?? QuotaUsage()) + contribution
            if QuotaDimension.all.contains(where: { $0.kind == change.key.kind && $0.used(contribution) > 0 }) {
                growers[project, default: [:]][change.key.kind] = index
            }
        }
        var errors: [ManifestError] = []
        let byKey = Dictionary(documents.indices.map { (documents[$0].key, $0) }, uniquingKeysWith: { first, _ in first })
        for project in delta.keys.sorted() {
            let added = delta[project]!
            let growing = QuotaDimension.all.filter { $0.used(added) > 0 }
            guard !growing.isEmpty, let quotas = try quotas(of: project, documents: documents, byKey: byKey, db) else { continue }
            let current = try storedUsage(project: project, of: Set(growing.map(\.kind)), types: &types, db)
            for dimension in growing {
                guard let limit = dimension.limit(quotas), dimension.used(current) + dimension.used(added) > limit else { continue }
                guard let index = growers[project]?[dimension.kind], let documentIndex = byKey[plan.changes[index].key] else { continue }
                let document = documents[documentIndex]
                errors.append(ManifestError(
                    location: document.location(of: [.key("metadata"), .key("name")]),
                    resource: document.key.description,
                    message: "project \(project)'s quota allows \(limit) \(dimension.noun); this would make \(dimension.used(current) + dimension.used(added)) (\(dimension.used(current)) now, \(dimension.used(added) > 0 ? "+" : "")\(dimension.used(added)) from this apply)",
                    hint: "raise spec.quotas.\(dimension.field) of Project \(project), or ask for fewer",
                    code: dimension.code
                ))
            }
        }
        if !errors.isEmpty { throw ManifestErrors(errors) }
    }

    /// What one resource counts against its project's quotas.
    private func usage(of spec: ResourceSpec?, types: inout InstanceTypeSizes, _ db: Database) throws -> QuotaUsage {
        switch spec {
        case .instance(let instance):
            let size = try types.size(of: instance.instanceType, db)
            return QuotaUsage(instances: 1, cores: size.vcpus, ramMB: size.memoryMB)
        case .volume(let volume): return QuotaUsage(volumes: 1, gigabytes: volume.sizeGB)
        case .address: return QuotaUsage(addresses: 1)
        case .securityGroup: return QuotaUsage(securityGroups: 1)
        default: return QuotaUsage()
        }
    }

    /// A project's quotas, defaults filled in: from this apply's documents when it is among them,
    /// else as stored; nil for a project that does not exist (references refuse that earlier).
    private func quotas(of project: String, documents: [ManifestDocument], byKey: [ResourceKey: Int], _ db: Database) throws -> Quotas? {
        var quotas: Quotas
        if let index = byKey[ResourceKey(kind: .project, project: nil, name: project)], case .project(let spec) = try documents[index].resource.spec {
            quotas = spec.quotas ?? Quotas()
        } else {
            // SQLite reads the fields out: decoding the spec for each EC2 launch costs more than the check.
            let statement = try db.cachedStatement(sql: """
                SELECT json_extract(spec, '$.quotas.instances'), json_extract(spec, '$.quotas.cores'), json_extract(spec, '$.quotas.ram'),
                    json_extract(spec, '$.quotas.volumes'), json_extract(spec, '$.quotas.gigabytes'), json_extract(spec, '$.quotas.addresses'),
                    json_extract(spec, '$.quotas.securityGroups')
                FROM resource WHERE kind = 'Project' AND project = '' AND name = ?
                """)
            guard let row = try Row.fetchOne(statement, arguments: [project]) else { return nil }
            quotas = Quotas(instances: row[0], cores: row[1], ram: row[2], volumes: row[3], gigabytes: row[4], addresses: row[5], securityGroups: row[6])
        }
        quotas.applyDefaults()  // a project stored before a quota existed gets that quota's default
        return quotas
    }

    /// What a project's live resources of `kinds` use now, as stored (the rest count zero).
    private func storedUsage(project: String, of kinds: Set<Kind>, types: inout InstanceTypeSizes, _ db: Database) throws -> QuotaUsage {
        var usage = QuotaUsage()
        for (type, count) in try kinds.contains(.instance) ? Self.instanceTypeCounts(db, project: project) : [:] where count > 0 {
            let size = try types.size(of: type, db)
            usage.instances += count
            usage.cores += count * size.vcpus
            usage.ramMB += count * size.memoryMB
        }
        guard !kinds.isDisjoint(with: [.volume, .address, .securityGroup]) else { return usage }
        let rows = try Row.fetchAll(db.cachedStatement(sql: """
            SELECT kind, COUNT(*), COALESCE(SUM(json_extract(spec, '$.sizeGB')), 0) FROM resource
            WHERE project = ? AND kind IN ('Volume', 'Address', 'SecurityGroup') AND deletionTimestamp IS NULL
            AND NOT (kind = 'SecurityGroup' AND name = 'default') GROUP BY kind
            """), arguments: [project])
        for row in rows {
            let kind: String = row[0]
            let count: Int = row[1]
            switch kind {
            case Kind.volume.rawValue:
                usage.volumes = count
                usage.gigabytes = row[2]
            case Kind.address.rawValue: usage.addresses = count
            default: usage.securityGroups = count
            }
        }
        return usage
    }
}

/// vCPUs and memory of instance types, from the apply's documents or the store, read once each.
struct InstanceTypeSizes {
    private var sizes: [String: (vcpus: Int, memoryMB: Int)] = [:]

    init(documents: [ManifestDocument]) {
        for document in documents where document.key.kind == .instanceType {
            if case .instanceType(let spec)? = try? document.resource.spec { sizes[document.key.name] = (spec.vcpus, spec.memoryMB) }
        }
    }

    /// An unknown type counts one vCPU and no memory (references refuse unknown types at apply).
    mutating func size(of type: String, _ db: Database) throws -> (vcpus: Int, memoryMB: Int) {
        if let known = sizes[type] { return known }
        let statement = try db.cachedStatement(sql: """
            SELECT json_extract(spec, '$.vcpus'), json_extract(spec, '$.memoryMB') FROM resource
            WHERE kind = 'InstanceType' AND project = '' AND name = ?
            """)
        let row = try Row.fetchOne(statement, arguments: [type])
        let size = (vcpus: (row?[0] as Int?) ?? 1, memoryMB: (row?[1] as Int?) ?? 0)
        sizes[type] = size
        return size
    }
}

/// One line of a project's quota table, as Horizon's overview shows it.
public struct QuotaLine: Sendable, Codable, Equatable {
    /// The quota's field in `spec.quotas` (`instances`, `cores`, `ram`, …).
    public var field: String
    /// What is counted, in words (`instances`, `MB of RAM`).
    public var noun: String
    public var used: Int
    /// nil when the project has no limit of this.
    public var limit: Int?
}

extension Store {
    /// What a project uses of each quota, and its limits (defaults filled in); nil when there is no such project.
    public func quotaUsage(project: String) throws -> [QuotaLine]? {
        try reading { db in
            guard let quotas = try quotas(of: project, documents: [], byKey: [:], db) else { return nil }
            var types = InstanceTypeSizes(documents: [])
            let usage = try storedUsage(project: project, of: Self.quotaKinds, types: &types, db)
            return QuotaDimension.all.map { QuotaLine(field: $0.field, noun: $0.noun, used: $0.used(usage), limit: $0.limit(quotas)) }
        }
    }

    /// What every live instance takes, summed over the cloud: their count, vCPUs and MB of memory.
    public func instanceTotals() throws -> (instances: Int, vcpus: Int, memoryMB: Int) {
        try reading { db in
            let row = try Row.fetchOne(db.cachedStatement(sql: """
                SELECT COALESCE(SUM(u.count), 0), COALESCE(SUM(u.count * COALESCE(json_extract(t.spec, '$.vcpus'), 1)), 0),
                    COALESCE(SUM(u.count * COALESCE(json_extract(t.spec, '$.memoryMB'), 0)), 0)
                FROM instanceUsage u LEFT JOIN resource t ON t.kind = 'InstanceType' AND t.project = '' AND t.name = u.instanceType
                """))
            return (row?[0] ?? 0, row?[1] ?? 0, row?[2] ?? 0)
        }
    }
}
