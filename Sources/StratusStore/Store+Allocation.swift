import Foundation
import GRDB
import StratusModel

extension Store {
    /// Claims the first free value of a pool for a resource; the same owner gets its existing value back.
    ///
    /// The table's primary key (pool, value) makes a double allocation impossible even with
    /// several writers. Returns nil when every candidate is taken.
    public func allocate(pool: String, candidates: some Sequence<String>, owner: ResourceKey) throws -> String? {
        let arguments: StatementArguments = [pool, owner.kind.rawValue, owner.project, owner.name]
        let ownedSQL = "SELECT value FROM allocation WHERE pool = ? AND ownerKind = ? AND ownerProject = ? AND ownerName = ?"
        // Most calls come from reconciles of resources that already hold their value: a read, no write.
        if let existing = try writer.read({ db in try String.fetchOne(db.cachedStatement(sql: ownedSQL), arguments: arguments) }) {
            return existing
        }
        return try writer.write { db in
            if let existing = try String.fetchOne(db.cachedStatement(sql: ownedSQL), arguments: arguments) { return existing }
            // Candidates are probed one by one by primary key, not by reading the whole pool.
            let taken = try db.cachedStatement(sql: "SELECT 1 FROM allocation WHERE pool = ? AND value = ?")
            for candidate in candidates where try Int.fetchOne(taken, arguments: [pool, candidate]) == nil {
                try db.execute(sql: "INSERT INTO allocation(pool, value, ownerKind, ownerProject, ownerName, createdAt) VALUES (?, ?, ?, ?, ?, ?)", arguments: [pool, candidate, owner.kind.rawValue, owner.project, owner.name, Timestamp.string(Date())])
                return candidate
            }
            return nil
        }
    }

    /// Releases everything a resource holds in a pool.
    public func release(pool: String, owner: ResourceKey) throws {
        try writer.write { db in
            try db.execute(sql: "DELETE FROM allocation WHERE pool = ? AND ownerKind = ? AND ownerProject = ? AND ownerName = ?", arguments: [pool, owner.kind.rawValue, owner.project, owner.name])
        }
    }
}
