import Foundation
import GRDB
import StratusModel

extension Store {
    /// EC2-classic's `default` security group: every project has one, made with the project (by
    /// field manager `stratus`, in no apply set), not deletable while the project exists, and
    /// deleted with it. Instances launched through the EC2 API without groups join it.
    public static let defaultGroup = "default"

    /// Whether `key` is a project's default security group.
    static func isDefaultGroup(_ key: ResourceKey) -> Bool { key.kind == .securityGroup && key.name == defaultGroup }

    /// Inserts the default group of `project` unless one exists (a manifest may declare its own).
    /// Returns its key when it made one.
    @discardableResult
    static func insertDefaultGroup(_ db: Database, project: String, now: String) throws -> ResourceKey? {
        let key = ResourceKey(kind: .securityGroup, project: project, name: Self.defaultGroup)
        let existing = try Row.fetchOne(db.cachedStatement(sql: "SELECT deletionTimestamp FROM resource WHERE kind = ? AND project = ? AND name = ?"), arguments: [key.kind.rawValue, project, key.name])
        if let existing {
            // A project made again while it (and so its group) was being deleted keeps its group.
            guard (existing[0] as String?) != nil else { return nil }
            try db.cachedStatement(sql: "UPDATE resource SET deletionTimestamp = NULL, updatedAt = ? WHERE kind = ? AND project = ? AND name = ?")
                .execute(arguments: [now, key.kind.rawValue, project, key.name])
            try record(db, StoredEvent(time: now, key: key, reason: "Updated", message: "kept: project \(project) was made again while it was being deleted"))
            return key
        }
        let resource = Resource(metadata: ObjectMeta(name: key.name, project: project), spec: .securityGroup(SecurityGroupSpec(description: "default group")))
        let document = try Admission.document(for: resource, origin: "<project \(project)>")
        try db.cachedStatement(sql: """
            INSERT INTO resource (kind, project, name, ec2Id, spec, specHash, generation, labels, annotations, applySet, manager, createdAt, updatedAt)
            VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, NULL, 'stratus', ?, ?)
            """).execute(arguments: [
                key.kind.rawValue, project, key.name, try Self.newEC2Id(db, prefix: "sg"), document.specJSON, document.specHash,
                document.labelsJSON, document.annotationsJSON, now, now,
            ])
        try record(db, StoredEvent(time: now, key: key, reason: "Created", message: "created with project \(project) (its default security group)", generation: 1))
        return key
    }

    /// Refuses to delete a default group whose project lives on (and is not deleted in the same call).
    func checkDefaultGroups(_ db: Database, deleting keys: [ResourceKey]) throws {
        let projects = Set(keys.filter { $0.kind == .project }.map(\.name))
        for key in keys where Self.isDefaultGroup(key) && !projects.contains(key.project) {
            let live = try Int.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM resource WHERE kind = 'Project' AND project = '' AND name = ? AND deletionTimestamp IS NULL"), arguments: [key.project])
            if live != nil { throw StoreError.defaultGroup(key) }
        }
    }
}

extension StoreError {
    public static func defaultGroup(_ key: ResourceKey) -> StoreError {
        StoreError(code: .defaultGroup, message: "refusing to delete \(key): every project has a default security group while it exists; it goes with project \(key.project)")
    }

    public var isDefaultGroup: Bool { code == .defaultGroup }
}
