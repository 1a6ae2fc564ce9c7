import GRDB
import StratusModel

extension Store {
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
        let resources = try writer.read { db in try Row.fetchAll(db, sql: sql, arguments: arguments).map(StoredResource.init(row:)) }
        return resources.sorted { $0.key < $1.key }
    }

    /// One resource, or nil.
    public func get(_ key: ResourceKey) throws -> StoredResource? {
        try writer.read { db in
            try Row.fetchOne(db, sql: "SELECT \(StoredResource.columns) FROM resource WHERE kind = ? AND project = ? AND name = ?", arguments: [key.kind.rawValue, key.project, key.name])
                .map(StoredResource.init(row:))
        }
    }

    /// One resource by its EC2-style id, or nil.
    public func get(ec2Id: String) throws -> StoredResource? {
        try writer.read { db in
            try Row.fetchOne(db, sql: "SELECT \(StoredResource.columns) FROM resource WHERE ec2Id = ?", arguments: [ec2Id]).map(StoredResource.init(row:))
        }
    }

    /// Events after a sequence number, oldest first: the change feed.
    public func events(after seq: Int64 = 0, limit: Int = 1000) throws -> [StoredEvent] {
        try writer.read { db in
            try StoredEvent.fetchAll(db, sql: "SELECT * FROM event WHERE seq > ? ORDER BY seq LIMIT ?", arguments: [seq, limit])
        }
    }

    /// The most recent events about one resource, oldest first.
    public func events(for key: ResourceKey, limit: Int = 20) throws -> [StoredEvent] {
        try writer.read { db in
            try StoredEvent.fetchAll(db, sql: """
                SELECT * FROM (SELECT * FROM event WHERE kind = ? AND project = ? AND name = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq
                """, arguments: [key.kind.rawValue, key.project, key.name, limit])
        }
    }

    /// The newest event's sequence number (0 for none).
    public func lastEventSeq() throws -> Int64 {
        try writer.read { db in try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(seq), 0) FROM event") ?? 0 }
    }

    /// How many resources of a kind are in each phase (`Terminating` for tombstones, `Pending` before any status).
    public func phaseCounts(kind: Kind) throws -> [String: Int] {
        try writer.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT CASE WHEN deletionTimestamp IS NOT NULL THEN 'Terminating'
                            ELSE COALESCE(json_extract(status, '$.phase'), 'Pending') END AS phase, COUNT(*) AS n
                FROM resource WHERE kind = ? GROUP BY 1
                """, arguments: [kind.rawValue])
            return Dictionary(rows.map { ($0["phase"] as String, $0["n"] as Int) }, uniquingKeysWith: +)
        }
    }

    /// How many resources the store holds.
    public func count() throws -> Int {
        try writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM resource") ?? 0 }
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
