import Foundation
import GRDB
import StratusModel

/// Reads inside one read transaction (`Store.read`): what a request looks up, seen at one state
/// of the store. Valid only inside the closure that received it.
public struct StoreReader {
    let db: Database

    /// Resources of a kind (all kinds when nil), optionally in one project, in key order.
    public func list(kind: Kind? = nil, project: String? = nil) throws -> [StoredResource] {
        var sql = "SELECT \(StoredResource.columns) FROM resource"
        var clauses: [String] = []
        var arguments: StatementArguments = []
        if let kind {
            clauses.append("kind = ?")
            arguments += [kind.rawValue]
        }
        if let project, kind?.scope != .cluster {
            clauses.append("project = ?")
            arguments += [project]
        }
        if !clauses.isEmpty { sql += " WHERE " + clauses.joined(separator: " AND ") }
        return try Row.fetchAll(db, sql: sql, arguments: arguments).map(StoredResource.init(row:)).sorted { $0.key < $1.key }
    }

    /// One resource, or nil.
    public func get(_ key: ResourceKey) throws -> StoredResource? {
        let statement = try db.cachedStatement(sql: "SELECT \(StoredResource.columns) FROM resource WHERE kind = ? AND project = ? AND name = ?")
        return try Row.fetchOne(statement, arguments: [key.kind.rawValue, key.project, key.name]).map(StoredResource.init(row:))
    }

    /// One resource by its EC2-style id, or nil.
    public func get(ec2Id: String) throws -> StoredResource? {
        let statement = try db.cachedStatement(sql: "SELECT \(StoredResource.columns) FROM resource WHERE ec2Id = ?")
        return try Row.fetchOne(statement, arguments: [ec2Id]).map(StoredResource.init(row:))
    }

    /// A project's instances launched with a client token (tombstoned ones too), found by index.
    public func instances(project: String, clientToken: String) throws -> [StoredResource] {
        try Row.fetchAll(db.cachedStatement(sql: """
            SELECT \(StoredResource.columns) FROM resource
            WHERE kind = 'Instance' AND project = ? AND json_extract(annotations, '$."ec2.stratus/client-token"') = ?
            """), arguments: [project, clientToken]).map(StoredResource.init(row:))
    }

    /// A resource's EC2-style id alone (nil when it has none or does not exist).
    public func ec2Id(of key: ResourceKey) throws -> String? {
        let statement = try db.cachedStatement(sql: "SELECT ec2Id FROM resource WHERE kind = ? AND project = ? AND name = ?")
        return try String?.fetchOne(statement, arguments: [key.kind.rawValue, key.project, key.name]) ?? nil
    }

    /// Names and EC2-style ids of the live resources of a kind, in one project or all; no spec is decoded.
    public func ec2Ids(kind: Kind, project: String?) throws -> [(project: String, name: String, id: String)] {
        let sql = "SELECT project, name, ec2Id FROM resource WHERE kind = ? AND deletionTimestamp IS NULL AND ec2Id IS NOT NULL"
        let rows = try project.map { try Row.fetchAll(db.cachedStatement(sql: sql + " AND project = ?"), arguments: [kind.rawValue, $0]) }
            ?? Row.fetchAll(db.cachedStatement(sql: sql), arguments: [kind.rawValue])
        return rows.map { ($0[0], $0[1], $0[2]) }
    }

    /// The EC2 names (`ec2.stratus/name`) the live resources of a kind hold where they differ
    /// from their names, by key; one column of the rows of a kind, no spec decoded.
    public func ec2Names(kind: Kind, project: String?) throws -> [ResourceKey: String] {
        let sql = "SELECT project, name, json_extract(annotations, '$.\"\(EC2Name.annotation)\"') AS ec2Name FROM resource WHERE kind = ? AND deletionTimestamp IS NULL AND ec2Name IS NOT NULL"
        let rows = try project.map { try Row.fetchAll(db.cachedStatement(sql: sql + " AND project = ?"), arguments: [kind.rawValue, $0]) }
            ?? Row.fetchAll(db.cachedStatement(sql: sql), arguments: [kind.rawValue])
        var names: [ResourceKey: String] = [:]
        for row in rows { names[ResourceKey(kind: kind, project: row[0], name: row[1])] = row[2] }
        return names
    }

    /// The live resource of a kind in a project whose EC2 name (`EC2Name`) is `ec2Name`.
    public func named(_ kind: Kind, ec2Name: String, project: String) throws -> StoredResource? {
        if let direct = try get(ResourceKey(kind: kind, project: project, name: EC2Name.resourceName(for: ec2Name))),
            !direct.isTerminating, EC2Name.of(direct.resource.metadata) == ec2Name
        {
            return direct
        }
        // A manifest may give any name an EC2 name of its own.
        let name = try String.fetchOne(db.cachedStatement(sql: """
            SELECT name FROM resource WHERE kind = ? AND project = ? AND deletionTimestamp IS NULL
            AND (json_extract(annotations, '$."\(EC2Name.annotation)"') = ? OR (name = ? AND json_extract(annotations, '$."\(EC2Name.annotation)"') IS NULL))
            """), arguments: [kind.rawValue, project, ec2Name, ec2Name])
        return try name.flatMap { try get(ResourceKey(kind: kind, project: project, name: $0)) }
    }

    /// The live resources of the given projects (nil: of every project) that belong to no apply
    /// set and were made through the EC2 API (manager `api:<user>`, or `api` before users were named), by key with their EC2-style ids, in
    /// project then key order; no spec or status is decoded.
    ///
    /// `diff` names these next to its plan. Listing and decoding every resource of the projects
    /// to find them cost more than the rest of a no-change diff; this reads three columns of the
    /// rows the `applySet` index finds.
    public func madeThroughAPI(projects: Set<String>?) throws -> [(key: ResourceKey, id: String?)] {
        guard projects?.isEmpty != true else { return [] }
        let statement = try db.cachedStatement(sql: """
            SELECT kind, project, name, ec2Id FROM resource
            WHERE applySet IS NULL AND (manager = 'api' OR manager LIKE 'api:%') AND deletionTimestamp IS NULL
            """)
        var found: [(key: ResourceKey, id: String?)] = []
        let rows = try Row.fetchCursor(statement)
        while let row = try rows.next() {
            let project: String = row[1]
            guard projects?.contains(project) ?? true, let kind = Kind(rawValue: row[0]) else { continue }
            found.append((ResourceKey(kind: kind, project: project, name: row[2]), row[3]))
        }
        return found.sorted { ($0.key.project, $0.key) < ($1.key.project, $1.key) }
    }

    /// A live resource's spec alone (neither status nor metadata is decoded), or nil.
    public func liveSpec(_ key: ResourceKey) throws -> ResourceSpec? {
        let statement = try db.cachedStatement(sql: "SELECT spec FROM resource WHERE kind = ? AND project = ? AND name = ? AND deletionTimestamp IS NULL")
        return try String.fetchOne(statement, arguments: [key.kind.rawValue, key.project, key.name]).map { try ResourceSpec.fromJSON(Data($0.utf8), kind: key.kind) }
    }

    /// A live resource's key and spec by its EC2-style id, or nil.
    public func liveSpec(ec2Id: String) throws -> (key: ResourceKey, spec: ResourceSpec)? {
        let statement = try db.cachedStatement(sql: "SELECT kind, project, name, spec FROM resource WHERE ec2Id = ? AND deletionTimestamp IS NULL")
        guard let row = try Row.fetchOne(statement, arguments: [ec2Id]), let kind = Kind(rawValue: row[0]) else { return nil }
        let project: String = row[1]
        return (ResourceKey(kind: kind, project: project.isEmpty ? nil : project, name: row[2]), try ResourceSpec.fromJSON(Data((row[3] as String).utf8), kind: kind))
    }

    /// What an instance quota check needs: the project's `quotas.instances` and `quotas.cores`
    /// (nil when the project is gone or being deleted; each nil when unset), the vCPUs of each
    /// instance type and the project's live instances per type. SQLite reads the two quotas out
    /// of the spec; decoding the project's spec showed in the profile of every RunInstances.
    public func quotaInputs(project: String) throws -> (limits: (instances: Int?, cores: Int?)?, vcpus: [String: Int], counts: [String: Int]) {
        let projectSQL = """
            SELECT json_extract(spec, '$.quotas.instances'), json_extract(spec, '$.quotas.cores') FROM resource
            WHERE kind = 'Project' AND project = '' AND name = ? AND deletionTimestamp IS NULL
            """
        let limits = try Row.fetchOne(db.cachedStatement(sql: projectSQL), arguments: [project]).map { row in (instances: row[0] as Int?, cores: row[1] as Int?) }
        var vcpus: [String: Int] = [:]
        let typesSQL = "SELECT name, json_extract(spec, '$.vcpus') FROM resource WHERE kind = 'InstanceType' AND deletionTimestamp IS NULL"
        for row in try Row.fetchAll(db.cachedStatement(sql: typesSQL)) { if let value = row[1] as Int? { vcpus[row[0]] = value } }
        return (limits, vcpus, try Store.instanceTypeCounts(db, project: project))
    }
}
