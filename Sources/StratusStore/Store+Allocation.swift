import Foundation
import GRDB
import StratusModel

extension Store {
    /// The pool of instances' fixed IPv4 addresses. One pool for the whole cloud, so an address
    /// names one instance even where two projects' networks overlap (the metadata service finds
    /// the asking instance by its source address).
    public static let fixedIPPool = "fixed-ip"

    /// Who holds a value of a pool, if anyone.
    public func allocationOwner(pool: String, value: String) throws -> ResourceKey? {
        try reading { db in
            let statement = try db.cachedStatement(sql: "SELECT ownerKind, ownerProject, ownerName FROM allocation WHERE pool = ? AND value = ?")
            guard let row = try Row.fetchOne(statement, arguments: [pool, value]), let kind = Kind(rawValue: row[0]) else { return nil }
            return ResourceKey(kind: kind, project: row[1], name: row[2])
        }
    }

    /// Claims the first free value of a pool for a resource; the same owner gets its existing value back.
    ///
    /// The table's primary key (pool, value) makes a double allocation impossible even with
    /// several writers. Returns nil when every candidate is taken.
    ///
    /// - Parameter quarantine: values released with `quarantine(pool:owner:)` longer ago than
    ///   this are free again (freed when a new value is needed); younger ones stay taken.
    public func allocate(pool: String, candidates: some Sequence<String>, owner: ResourceKey, quarantine: Duration? = nil) throws -> String? {
        let arguments: StatementArguments = [pool, owner.kind.rawValue, owner.project, owner.name]
        let ownedSQL = "SELECT value FROM allocation WHERE pool = ? AND ownerKind = ? AND ownerProject = ? AND ownerName = ?"
        // Most calls come from reconciles of resources that already hold their value: a read, no write.
        if let existing = try reading({ db in try String.fetchOne(db.cachedStatement(sql: ownedSQL), arguments: arguments) }) {
            return existing
        }
        return try writing { db in
            if let existing = try String.fetchOne(db.cachedStatement(sql: ownedSQL), arguments: arguments) { return existing }
            if let quarantine {
                let (seconds, attoseconds) = quarantine.components
                let cutoff = Timestamp.string(Date().addingTimeInterval(-(Double(seconds) + Double(attoseconds) / 1e18)))
                try db.cachedStatement(sql: "DELETE FROM allocation WHERE pool = ? AND ownerKind = ? AND createdAt < ?").execute(arguments: [pool, Self.quarantineOwner, cutoff])
            }
            // Candidates are probed one by one by primary key, not by reading the whole pool.
            let taken = try db.cachedStatement(sql: "SELECT 1 FROM allocation WHERE pool = ? AND value = ?")
            for candidate in candidates where try Int.fetchOne(taken, arguments: [pool, candidate]) == nil {
                try db.execute(sql: "INSERT INTO allocation(pool, value, ownerKind, ownerProject, ownerName, createdAt) VALUES (?, ?, ?, ?, ?, ?)", arguments: [pool, candidate, owner.kind.rawValue, owner.project, owner.name, Timestamp.string(Date())])
                return candidate
            }
            return nil
        }
    }

    /// The value a resource holds in a pool, if any.
    public func allocation(pool: String, owner: ResourceKey) throws -> String? {
        try reading { db in
            try String.fetchOne(db.cachedStatement(sql: "SELECT value FROM allocation WHERE pool = ? AND ownerKind = ? AND ownerProject = ? AND ownerName = ?"),
                                arguments: [pool, owner.kind.rawValue, owner.project, owner.name])
        }
    }

    /// The public IP of an elastic address: the one its spec claims, or the first free one of
    /// `range`; nil when the claimed one is taken or the range is exhausted.
    public func allocatePublicIp(_ claimed: String?, range: IPv4Network, owner: ResourceKey) throws -> String? {
        if let claimed { return try allocate(pool: Self.publicIpPool, candidates: [claimed], owner: owner) }
        return try allocate(pool: Self.publicIpPool, candidates: range.hostAddresses.lazy.map(\.description), owner: owner)
    }

    /// The pool of elastic addresses' public IPs.
    public static let publicIpPool = "publicIp"

    /// The owner kind of a released value that may not be given out yet.
    static let quarantineOwner = "Quarantined"

    /// Releases what a resource holds in a pool into quarantine: nobody holds it, and `allocate`
    /// gives it out again only after its `quarantine` (an AoE address a stale initiator may still
    /// reach must not name the next volume at once).
    public func quarantine(pool: String, owner: ResourceKey) throws {
        try writing { db in
            try db.execute(sql: "UPDATE allocation SET ownerKind = ?, ownerProject = '', ownerName = value, createdAt = ? WHERE pool = ? AND ownerKind = ? AND ownerProject = ? AND ownerName = ?",
                           arguments: [Self.quarantineOwner, Timestamp.string(Date()), pool, owner.kind.rawValue, owner.project, owner.name])
        }
    }

    /// Releases everything a resource holds in a pool.
    public func release(pool: String, owner: ResourceKey) throws {
        try writing { db in
            try db.execute(sql: "DELETE FROM allocation WHERE pool = ? AND ownerKind = ? AND ownerProject = ? AND ownerName = ?", arguments: [pool, owner.kind.rawValue, owner.project, owner.name])
        }
    }
}
