import Foundation
import GRDB
import StratusModel

extension Store {
    /// Runs `body` in one read transaction: the reads in it see one state of the store and pay for
    /// one transaction. Beginning and ending one (with GRDB's schema check) costs about as much
    /// as a primary-key lookup; a request that made each lookup its own read spent a fifth of the
    /// EC2 API's CPU there. The reader is valid only inside `body`.
    public func read<T>(_ body: (StoreReader) throws -> T) throws -> T {
        try reading { db in try body(StoreReader(db: db)) }
    }

    /// Resources of a kind (all kinds when nil), optionally in one project, in key order.
    public func list(kind: Kind? = nil, project: String? = nil) throws -> [StoredResource] {
        try read { try $0.list(kind: kind, project: project) }
    }

    /// One resource, or nil.
    public func get(_ key: ResourceKey) throws -> StoredResource? {
        try read { try $0.get(key) }
    }

    /// One resource by its EC2-style id, or nil.
    public func get(ec2Id: String) throws -> StoredResource? {
        try read { try $0.get(ec2Id: ec2Id) }
    }

    /// The annotation that carries an EC2 RunInstances client token (indexed, migration v6).
    public static let clientTokenAnnotation = "ec2.stratus/client-token"

    /// A resource's EC2-style id alone (nil when it has none or does not exist).
    public func ec2Id(of key: ResourceKey) throws -> String? {
        try read { try $0.ec2Id(of: key) }
    }

    /// Names and EC2-style ids of the live resources of a kind, in one project or all; no spec is decoded.
    public func ec2Ids(kind: Kind, project: String?) throws -> [(project: String, name: String, id: String)] {
        try read { try $0.ec2Ids(kind: kind, project: project) }
    }

    /// See `StoreReader.ec2Names(kind:project:)`.
    public func ec2Names(kind: Kind, project: String?) throws -> [ResourceKey: String] {
        try read { try $0.ec2Names(kind: kind, project: project) }
    }

    /// See `StoreReader.named(_:ec2Name:project:)`.
    public func named(_ kind: Kind, ec2Name: String, project: String) throws -> StoredResource? {
        try read { try $0.named(kind, ec2Name: ec2Name, project: project) }
    }

    /// The live resources of the given projects (nil: of every project) made through the EC2 API,
    /// outside every apply set (see `StoreReader.madeThroughAPI(projects:)`); no spec is decoded.
    public func madeThroughAPI(projects: Set<String>?) throws -> [(key: ResourceKey, id: String?)] {
        try read { try $0.madeThroughAPI(projects: projects) }
    }

    /// A live resource's key and spec by its EC2-style id, or nil.
    public func liveSpec(ec2Id: String) throws -> (key: ResourceKey, spec: ResourceSpec)? {
        try read { try $0.liveSpec(ec2Id: ec2Id) }
    }

    /// Every instance's key, type and the node its status records (nil before it is placed), for the
    /// scheduler; no spec or status is decoded.
    public func instancePlacements() throws -> [(key: ResourceKey, instanceType: String, node: String?)] {
        try reading { db in
            let statement = try db.cachedStatement(sql: """
                SELECT project, name, json_extract(spec, '$.instanceType'), json_extract(status, '$.details.node') FROM resource WHERE kind = 'Instance'
                """)
            return try Row.fetchAll(statement).map { row in
                (ResourceKey(kind: .instance, project: row[0], name: row[1]), (row[2] as String?) ?? "", row[3] as String?)
            }
        }
    }

    /// What a periodic resync compares of each instance, read by SQLite without decoding specs or statuses.
    public struct InstanceSummary: Sendable {
        public var key: ResourceKey
        public var id: String?
        public var generation: Int
        public var terminating: Bool
        public var powerState: String?
        public var observedGeneration: Int?
        public var phase: String?
        /// The status of the `Synced` condition.
        public var synced: ConditionStatus?
        public var node: String?
        public var network: String?
    }

    public func instanceSummaries() throws -> [InstanceSummary] {
        try reading { db in
            let statement = try db.cachedStatement(sql: """
                SELECT project, name, ec2Id, generation, deletionTimestamp IS NOT NULL, json_extract(spec, '$.powerState'),
                    json_extract(status, '$.observedGeneration'), json_extract(status, '$.phase'),
                    (SELECT json_extract(c.value, '$.status') FROM json_each(resource.status, '$.conditions') AS c
                        WHERE json_extract(c.value, '$.type') = '\(ConditionType.synced.rawValue)'),
                    json_extract(status, '$.details.node'), json_extract(status, '$.details.network')
                FROM resource WHERE kind = 'Instance'
                """)
            return try Row.fetchAll(statement).map { row in
                InstanceSummary(
                    key: ResourceKey(kind: .instance, project: row[0], name: row[1]), id: row[2], generation: row[3], terminating: row[4],
                    powerState: row[5], observedGeneration: row[6], phase: row[7], synced: (row[8] as String?).flatMap(ConditionStatus.init(rawValue:)), node: row[9], network: row[10]
                )
            }
        }
    }

    /// Events after a sequence number, oldest first: the change feed.
    public func events(after seq: Int64 = 0, limit: Int = 1000) throws -> [StoredEvent] {
        try reading { db in
            try StoredEvent.fetchAll(db, sql: "SELECT * FROM event WHERE seq > ? ORDER BY seq LIMIT ?", arguments: [seq, limit])
        }
    }

    /// What the controller follows of the feed: each event's position, resource, reason and API
    /// request, read by column position (decoding whole events as records cost it ~2% of the CPU under churn).
    public func feed(after seq: Int64, limit: Int = 1000) throws -> [(seq: Int64, key: ResourceKey?, reason: String, requestId: String?)] {
        try reading { db in
            let statement = try db.cachedStatement(sql: "SELECT seq, kind, project, name, reason, requestId FROM event WHERE seq > ? ORDER BY seq LIMIT ?")
            return try Row.fetchAll(statement, arguments: [seq, limit]).map { row in
                (row[0], Kind(rawValue: row[1]).map { ResourceKey(kind: $0, project: row[2], name: row[3]) }, row[4], row[5])
            }
        }
    }

    /// The most recent events about one resource, oldest first.
    public func events(for key: ResourceKey, limit: Int = 20) throws -> [StoredEvent] {
        try reading { db in
            try StoredEvent.fetchAll(db, sql: """
                SELECT * FROM (SELECT * FROM event WHERE kind = ? AND project = ? AND name = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq
                """, arguments: [key.kind.rawValue, key.project, key.name, limit])
        }
    }

    /// The newest event's sequence number (0 for none).
    public func lastEventSeq() throws -> Int64 {
        try reading { db in try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(seq), 0) FROM event") ?? 0 }
    }

    /// How many resources of a kind are in each phase (`Terminating` for tombstones, `Pending` before any status).
    public func phaseCounts(kind: Kind) throws -> [String: Int] {
        try reading { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT CASE WHEN deletionTimestamp IS NOT NULL THEN 'Terminating'
                            ELSE COALESCE(json_extract(status, '$.phase'), 'Pending') END AS phase, COUNT(*) AS n
                FROM resource WHERE kind = ? GROUP BY 1
                """, arguments: [kind.rawValue])
            return Dictionary(rows.map { ($0["phase"] as String, $0["n"] as Int) }, uniquingKeysWith: +)
        }
    }

    /// How the resources of one apply set are doing, as Argo CD sums up an application.
    public struct SetHealth: Sendable, Equatable {
        public var ready = 0
        public var progressing = 0
        public var failed = 0
        public var terminating = 0
        public var total: Int { ready + progressing + failed + terminating }

        /// `12 ready` or `10 ready, 1 progressing, 1 failed`.
        public var summary: String {
            let parts = [(ready, "ready"), (progressing, "progressing"), (failed, "failed"), (terminating, "terminating")]
                .filter { $0.0 > 0 }.map { "\($0.0) \($0.1)" }
            return parts.isEmpty ? "empty" : parts.joined(separator: ", ")
        }
    }

    /// Counts the set's resources: terminating (a tombstone), failed (the last reconcile failed:
    /// `Synced=False`), ready (`Ready=True`, or a kind nothing converges), else progressing.
    public func applySetHealth(_ applySet: String) throws -> SetHealth {
        try reading { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT CASE
                    WHEN deletionTimestamp IS NOT NULL THEN 'terminating'
                    WHEN EXISTS (SELECT 1 FROM json_each(status, '$.conditions') WHERE json_extract(value, '$.type') = 'Synced' AND json_extract(value, '$.status') = 'False') THEN 'failed'
                    WHEN EXISTS (SELECT 1 FROM json_each(status, '$.conditions') WHERE (json_extract(value, '$.type') = 'Ready' AND json_extract(value, '$.status') = 'True')
                        OR (json_extract(value, '$.type') = 'Synced' AND json_extract(value, '$.reason') = 'NoReconciler')) THEN 'ready'
                    ELSE 'progressing' END AS health, COUNT(*) AS n
                FROM resource WHERE applySet = ? GROUP BY 1
                """, arguments: [applySet])
            var health = SetHealth()
            for row in rows {
                let count: Int = row["n"]
                switch row["health"] as String {
                case "terminating": health.terminating = count
                case "failed": health.failed = count
                case "ready": health.ready = count
                default: health.progressing = count
                }
            }
            return health
        }
    }

    /// How many resources the store holds.
    public func count() throws -> Int {
        try reading { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM resource") ?? 0 }
    }
}

extension Store {
    /// Finds one resource as a user names it: by name (in `project`, or in the only project that
    /// has it) or by EC2 id. Fails with a message that suggests the closest name.
    public func find(kind: Kind, name: String, project: String?) throws -> StoredResource {
        if let prefix = kind.idPrefix, name.hasPrefix(prefix + "-"), let found = try get(ec2Id: name), found.key.kind == kind {
            return found
        }
        if kind.scope == .cluster || project != nil {
            let key = ResourceKey(kind: kind, project: project, name: name)
            if let found = try get(key) { return found }
            let hint = Suggestion.hint(for: name, in: try list(kind: kind, project: project).map(\.metadata.name)).map { "; \($0)" } ?? ""
            throw StoreError.notFound(message: "\(key) not found\(hint)")
        }
        let matches = try list(kind: kind).filter { $0.metadata.name == name }
        if matches.count == 1 { return matches[0] }
        if matches.isEmpty { throw StoreError.notFound(message: "\(kind.rawValue) \(name) not found in any project") }
        throw StoreError.conflict("\(kind.rawValue) \(name) exists in projects \(matches.map(\.key.project).joined(separator: ", ")); choose one with -p")
    }
}
