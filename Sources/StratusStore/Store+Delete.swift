import Foundation
import GRDB
import StratusModel

extension Store {
    /// What `delete` did to one resource.
    public enum DeleteOutcome: String, Sendable {
        /// Marked for deletion; the controller finishes it.
        case markedForDeletion
        /// It was already being deleted.
        case alreadyTerminating
        /// It does not exist.
        case notFound
    }

    /// Marks resources for deletion (a tombstone the controller finishes), in one transaction.
    ///
    /// Refuses, changing nothing, if any of them carries `stratus/protect: "true"`.
    public func delete(_ keys: [ResourceKey], reason: String = "deletion requested") throws -> [(ResourceKey, DeleteOutcome)] {
        try writing { db in
            let now = Timestamp.string(Date())
            var outcomes: [(ResourceKey, DeleteOutcome)] = []
            var protected: [ResourceKey] = []
            try checkDefaultGroups(db, deleting: keys)
            // A project's default group goes with it, and an instance's volumes attached with deleteOnTermination.
            var keys = keys
            for key in keys where key.kind == .project {
                let group = ResourceKey(kind: .securityGroup, project: key.name, name: Self.defaultGroup)
                if !keys.contains(group) { keys.append(group) }
            }
            var cascaded: [ResourceKey: String] = [:]
            for key in keys where key.kind == .instance {
                for volume in try Self.volumesDeletedWith(db, instance: key) where !keys.contains(volume) {
                    keys.append(volume)
                    cascaded[volume] = "attached to \(key.name) with deleteOnTermination, which is deleted (\(reason))"
                }
            }
            for key in keys {
                let row = try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT annotations, deletionTimestamp FROM resource WHERE kind = ? AND project = ? AND name = ?"),
                    arguments: [key.kind.rawValue, key.project, key.name])
                guard let row else {
                    outcomes.append((key, .notFound))
                    continue
                }
                if row[1] as String? != nil {
                    outcomes.append((key, .alreadyTerminating))
                    continue
                }
                let annotations: String = row[0]
                if Self.isProtected(annotations) { protected.append(key) }
                outcomes.append((key, .markedForDeletion))
            }
            if !protected.isEmpty { throw StoreError.protected(protected) }
            for (key, outcome) in outcomes where outcome == .markedForDeletion {
                try db.cachedStatement(sql: "UPDATE resource SET deletionTimestamp = ?, updatedAt = ? WHERE kind = ? AND project = ? AND name = ?")
                    .execute(arguments: [now, now, key.kind.rawValue, key.project, key.name])
                try record(db, StoredEvent(time: now, key: key, reason: "Deleting", message: cascaded[key] ?? reason))
            }
            return outcomes
        }
    }

    /// The live volumes attached to `instance` with `deleteOnTermination: true` (EC2's
    /// DeleteOnTermination): they are deleted with it. A guest still holding one keeps it until
    /// it lets go (the volume's finalizer waits). A protected volume (`stratus/protect`) is not
    /// among them: it stays, detached.
    static func volumesDeletedWith(_ db: Database, instance: ResourceKey) throws -> [ResourceKey] {
        let rows = try Row.fetchAll(db.cachedStatement(sql: """
            SELECT name, annotations FROM resource WHERE kind = 'Volume' AND project = ? AND deletionTimestamp IS NULL
                AND json_extract(spec, '$.attachment.instance') = ? AND json_extract(spec, '$.attachment.deleteOnTermination') = 1
            """), arguments: [instance.project, instance.name])
        return rows.filter { !isProtected($0[1]) }.map { ResourceKey(kind: .volume, project: instance.project, name: $0[0]) }
    }

    /// Removes a tombstoned resource and its allocations once its external state is gone (the controller's last step).
    @discardableResult
    public func finalizeDeletion(_ key: ResourceKey) throws -> Bool {
        try writing { db in
            try db.cachedStatement(sql: "DELETE FROM resource WHERE kind = ? AND project = ? AND name = ? AND deletionTimestamp IS NOT NULL")
                .execute(arguments: [key.kind.rawValue, key.project, key.name])
            guard db.changesCount > 0 else { return false }
            try db.cachedStatement(sql: "DELETE FROM allocation WHERE ownerKind = ? AND ownerProject = ? AND ownerName = ?")
                .execute(arguments: [key.kind.rawValue, key.project, key.name])
            try record(db, StoredEvent(time: Timestamp.string(Date()), key: key, reason: "Deleted", message: "deletion finished"))
            return true
        }
    }
}
