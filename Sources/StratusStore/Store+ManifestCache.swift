import Foundation
import GRDB
import Logging
import StratusModel

extension Store: ManifestCache {
    /// How long a remembered parse is kept.
    static let manifestCacheLifetime: TimeInterval = 30 * 86400

    public func cachedManifests(_ digests: [String]) -> [String: String] {
        guard !digests.isEmpty else { return [:] }
        do {
            return try reading { db in
                var found: [String: String] = [:]
                let statement = try db.cachedStatement(sql: "SELECT body FROM manifestCache WHERE digest = ?")
                for digest in digests {
                    if let body = try String.fetchOne(statement, arguments: [digest]) { found[digest] = body }
                }
                return found
            }
        } catch {
            logger.debug("manifest cache unreadable", metadata: ["stratus.error": "\(error)"])
            return [:]
        }
    }

    public func cacheManifests(_ bodies: [String: String]) {
        let now = Date()
        do {
            try writing { db in
                let insert = try db.cachedStatement(sql: "INSERT OR REPLACE INTO manifestCache(digest, body, createdAt) VALUES (?, ?, ?)")
                for (digest, body) in bodies { try insert.execute(arguments: [digest, body, Timestamp.string(now)]) }
                try db.execute(sql: "DELETE FROM manifestCache WHERE createdAt < ?", arguments: [Timestamp.string(now.addingTimeInterval(-Self.manifestCacheLifetime))])
            }
        } catch {
            logger.debug("manifest cache not written", metadata: ["stratus.error": "\(error)"])
        }
    }
}
