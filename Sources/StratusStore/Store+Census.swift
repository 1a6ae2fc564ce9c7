import GRDB
import StratusModel

/// How many resources are in each state, counted by SQLite in one read (for `/metrics` and
/// the dashboard's health bar) from the status summary columns (migration v19), without
/// decoding a single resource.
public struct CensusRow: Sendable, Equatable {
    public var kind: String
    public var project: String
    public var phase: String
    /// The Ready condition's status (`True`, `False`, `Unknown`); `Unknown` when it has none.
    public var ready: String
    /// The Synced condition's status and reason, `False:OutOfSync`; nil when it has none.
    public var synced: String?
    public var terminating: Bool
    public var count: Int

    /// Where Argo CD's health bar would put these resources.
    public var health: Health {
        if terminating { return .terminating }
        if synced == "False:\(ConditionReason.outOfSync.rawValue)" { return .drifted }
        if synced?.hasPrefix("False:") == true || phase == "Failed" || phase == "Error" { return .failed }
        return ready == "True" ? .ready : .progressing
    }

    /// The health bar's categories, in its order.
    public enum Health: String, Sendable, CaseIterable {
        case ready = "Ready", progressing = "Progressing", failed = "Failed", drifted = "Drifted", terminating = "Terminating"
    }
}

extension Store {
    /// Resources grouped by kind, project, phase, Ready, Synced and whether they are being deleted.
    public func census() throws -> [CensusRow] {
        try reading { db in
            try Row.fetchAll(db.cachedStatement(sql: """
                SELECT kind, project, COALESCE(statusPhase, '') AS phase, COALESCE(statusReady, 'Unknown') AS ready, statusSynced AS synced,
                  deletionTimestamp IS NOT NULL AS terminating, COUNT(*) AS count
                FROM resource GROUP BY 1, 2, 3, 4, 5, 6
                """)).map { row in
                CensusRow(kind: row["kind"], project: row["project"], phase: row["phase"], ready: row["ready"], synced: row["synced"], terminating: row["terminating"], count: row["count"])
            }
        }
    }
}
