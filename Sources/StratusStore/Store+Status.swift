import Foundation
import GRDB
import StratusModel

extension Store {
    /// Writes a resource's status (the controller's only write to a resource).
    ///
    /// Returns false when the resource is gone. An event is recorded when the phase changes;
    /// a caller that knows the previous phase passes it and saves reading the old status.
    @discardableResult
    public func updateStatus(_ key: ResourceKey, _ status: ResourceStatus, previousPhase: String?? = .none) throws -> Bool {
        let json = try CanonicalJSON.string(status)
        return try writing { db in
            var oldPhase: String?
            if case .some(let known) = previousPhase {
                oldPhase = known
            } else if let old = try String.fetchOne(
                db.cachedStatement(sql: "SELECT status FROM resource WHERE kind = ? AND project = ? AND name = ?"), arguments: [key.kind.rawValue, key.project, key.name]) {
                oldPhase = try JSONDecoder().decode(ResourceStatus.self, from: Data(old.utf8)).phase
            }
            let ready = status.condition(.ready)?.status.rawValue
            let synced = status.condition(.synced).map { "\($0.status.rawValue):\($0.reason.rawValue)" }
            try db.cachedStatement(sql: "UPDATE resource SET status = ?, statusPhase = ?, statusReady = ?, statusSynced = ? WHERE kind = ? AND project = ? AND name = ?")
                .execute(arguments: [json, status.phase, ready, synced, key.kind.rawValue, key.project, key.name])
            guard db.changesCount > 0 else { return false }
            if let phase = status.phase, phase != oldPhase {
                let ready = status.condition(.ready)
                let warning = ready?.status == .false
                let message = ready.map { "\($0.reason.rawValue)\($0.message.map { ": \($0)" } ?? "")" } ?? "phase \(phase)"
                try record(db, StoredEvent(time: Timestamp.string(Date()), key: key, type: warning ? "Warning" : "Normal", reason: phase, message: message, generation: status.observedGeneration))
            }
            return true
        }
    }

    /// Appends an event about a resource (a reconciler's warning, say) to the feed.
    public func recordEvent(_ key: ResourceKey, type: String = "Normal", reason: String, message: String) throws {
        try writing { db in try record(db, StoredEvent(time: Timestamp.string(Date()), key: key, type: type, reason: reason, message: message)) }
    }

    /// Reads a named cursor into the event feed (0 when it was never saved).
    public func cursor(_ name: String) throws -> Int64 {
        try reading { db in try Int64.fetchOne(db, sql: "SELECT seq FROM cursor WHERE name = ?", arguments: [name]) ?? 0 }
    }

    /// Saves a named cursor into the event feed.
    public func saveCursor(_ name: String, _ seq: Int64) throws {
        try writing { db in
            try db.cachedStatement(sql: "INSERT INTO cursor(name, seq) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET seq = excluded.seq")
                .execute(arguments: [name, seq])
        }
    }
}
