import Foundation
import GRDB
import StratusModel

extension Store {
    /// Computes what applying the documents would do, changing nothing: the same admission as
    /// `apply` (references, access keys, authorization, quotas), without the commit.
    ///
    /// Fails with every dangling reference or exceeded quota (file:line:column and a hint), and
    /// with `StoreError` when a prune would break the budget or touch a protected resource.
    public func plan(_ documents: [ManifestDocument], options: ApplyOptions) throws -> ApplyPlan {
        try reading { db in try computePlan(db, documents, options) }
    }

    /// Records the documents as desired state in one transaction, and returns what changed.
    ///
    /// Either every change is written or, on any error, none is.
    @discardableResult
    public func apply(_ documents: [ManifestDocument], options: ApplyOptions) throws -> ApplyPlan {
        try apply(documents, options: options, seed: false)
    }

    func apply(_ documents: [ManifestDocument], options: ApplyOptions, seed: Bool) throws -> ApplyPlan {
        try writing { db in
            var plan = try computePlan(db, documents, options)
            try commit(db, &plan, documents, options)
            if seed { try db.execute(sql: "INSERT OR REPLACE INTO meta(key, value) VALUES ('catalogSeeded', ?)", arguments: [Timestamp.string(Date())]) }
            return plan
        }
    }

    // MARK: - Planning

    /// A stored row, as much as planning needs.
    struct SnapshotRow {
        var id: Int64
        var ec2Id: String?
        var specHash: String
        var labels: String
        var annotations: String
        var applySet: String?
        var terminating: Bool
        var isProtected: Bool
        var manager: String?
    }

    /// The stored rows an apply compares against: all of them, or only `keys` (a small API write
    /// needs a handful of rows, not a scan of 10,000).
    func snapshot(_ db: Database, only keys: Set<ResourceKey>? = nil) throws -> [ResourceKey: SnapshotRow] {
        var rows: [ResourceKey: SnapshotRow] = [:]
        let columns = "SELECT id, kind, project, name, ec2Id, specHash, labels, annotations, applySet, deletionTimestamp, manager FROM resource"
        let cursor: RowCursor
        if let keys {
            let statement = try db.cachedStatement(sql: columns + " WHERE kind = ? AND project = ? AND name = ?")
            for key in keys {
                guard let row = try Row.fetchOne(statement, arguments: [key.kind.rawValue, key.project, key.name]) else { continue }
                rows[key] = Self.snapshotRow(row)
            }
            return rows
        }
        rows.reserveCapacity(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM resource") ?? 0)
        cursor = try Row.fetchCursor(db, sql: columns)
        while let row = try cursor.next() {
            guard let kind = Kind(rawValue: row[1]) else { continue }
            let annotations: String = row[7]
            let key = ResourceKey(kind: kind, project: row[2], name: row[3])
            rows[key] = SnapshotRow(
                id: row[0], ec2Id: row[4], specHash: row[5], labels: row[6], annotations: annotations, applySet: row[8],
                terminating: row[9] as String? != nil,
                isProtected: Self.isProtected(annotations), manager: row[10]
            )
        }
        return rows
    }

    static func snapshotRow(_ row: Row) -> SnapshotRow {
        let annotations: String = row[7]
        return SnapshotRow(
            id: row[0], ec2Id: row[4], specHash: row[5], labels: row[6], annotations: annotations, applySet: row[8],
            terminating: row[9] as String? != nil,
            isProtected: Self.isProtected(annotations), manager: row[10]
        )
    }

    /// Whether the annotations (canonical JSON) set `stratus/protect: "true"`; only those that
    /// name the annotation are decoded (most are `{}`: a snapshot asks for every stored row).
    static func isProtected(_ annotationsJSON: String) -> Bool {
        guard annotationsJSON.utf8.count > 2, mentions(annotationsJSON, protectAnnotationBytes) else { return false }
        let annotations = try? JSONDecoder().decode([String: String].self, from: Data(annotationsJSON.utf8))
        return annotations?[ObjectMeta.protectAnnotation]?.lowercased() == "true"
    }

    private static let protectAnnotationBytes = Array(ObjectMeta.protectAnnotation.utf8)

    /// Whether `text` holds `needle`, by a plain byte scan: the generic `Collection.contains(_:)`
    /// subsequence search cost 2% of the EC2 server's CPU here, for a few rows per request.
    static func mentions(_ text: String, _ needle: [UInt8]) -> Bool {
        var text = text
        return text.withUTF8 { bytes in
            guard let first = needle.first, bytes.count >= needle.count else { return false }
            var index = 0
            while index <= bytes.count - needle.count {
                if bytes[index] == first, needle.indices.allSatisfy({ bytes[index + $0] == needle[$0] }) { return true }
                index += 1
            }
            return false
        }
    }

    /// The version of the desired state now (see migration `v16-desired-version`).
    static func desiredVersion(_ db: Database) throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT version FROM desiredVersion") ?? 0
    }

    /// Stored annotations without the keys an apply stamps (`ApplyOptions.stamp`), as canonical
    /// JSON, so a stamp is never a difference; rows that do not mention a stamped key are returned as they are.
    static func unstamped(_ annotationsJSON: String, _ stamp: [String: String]) throws -> String {
        guard !stamp.isEmpty, stamp.keys.contains(where: { mentions(annotationsJSON, Array($0.utf8)) }) else { return annotationsJSON }
        var annotations = try JSONDecoder().decode([String: String].self, from: Data(annotationsJSON.utf8))
        for key in stamp.keys { annotations[key] = nil }
        return try CanonicalJSON.string(annotations)
    }

    /// A document's annotations with the stamp added, as canonical JSON.
    static func stamped(_ annotationsJSON: String, _ stamp: [String: String]) throws -> String {
        guard !stamp.isEmpty else { return annotationsJSON }
        var annotations = try JSONDecoder().decode([String: String].self, from: Data(annotationsJSON.utf8))
        annotations.merge(stamp) { _, new in new }
        return try CanonicalJSON.string(annotations)
    }

    func computePlan(_ db: Database, _ documents: [ManifestDocument], _ options: ApplyOptions) throws -> ApplyPlan {
        let version = try Self.desiredVersion(db)
        if let expected = options.expectVersion, expected != version {
            throw StoreError.conflict("the store has changed since this plan was made (desired-state version \(expected), now \(version)): nothing was applied; make the plan again and review it")
        }
        // Without prune only the documents and what they refer to matter; small sets read just those rows.
        let stored: [ResourceKey: SnapshotRow]
        if !options.prune && documents.count <= 64 {
            var keys = Set(documents.map(\.key))
            for document in documents { for reference in document.references { keys.insert(reference.target) } }
            stored = try snapshot(db, only: keys)
        } else {
            stored = try snapshot(db)
        }
        try checkReferences(db, documents, stored)
        try checkAccessKeys(db, documents)
        try checkEC2Names(db, documents)
        var changes: [PlannedChange] = []
        changes.reserveCapacity(documents.count)
        // In file order (files sorted by path), like kubectl. Fields are read in place: copying a
        // document per iteration is measurable at 100,000 of them.
        for index in documents.indices {
            let key = documents[index].key
            guard let row = stored[key] else {
                changes.append(PlannedChange(action: .create, key: key, newSpec: try documents[index].resource.spec, specChanged: true))
                continue
            }
            let specChanged = row.specHash != documents[index].specHash
            let sameSet = row.applySet == options.storedSet
            let annotations = try Self.unstamped(row.annotations, options.stamp)
            if !specChanged && row.labels == documents[index].labelsJSON && annotations == documents[index].annotationsJSON && sameSet && !row.terminating {
                changes.append(PlannedChange(action: .unchanged, key: key, id: row.ec2Id, previousManager: row.manager))
                continue
            }
            let document = documents[index]
            var fields: [FieldChange] = []
            var oldSpec: ResourceSpec?
            if specChanged {
                let json = try String.fetchOne(db, sql: "SELECT spec FROM resource WHERE id = ?", arguments: [row.id]) ?? "{}"
                oldSpec = try ResourceSpec.fromJSON(Data(json.utf8), kind: key.kind)
                fields += FieldDiff.changes(from: try JSONValue(json: json), to: try JSONValue(json: document.specJSON), path: "spec")
            }
            fields += FieldDiff.changes(from: try JSONValue(json: row.labels), to: try JSONValue(json: document.labelsJSON), path: "metadata.labels")
            fields += FieldDiff.changes(from: try JSONValue(json: annotations), to: try JSONValue(json: document.annotationsJSON), path: "metadata.annotations")
            // A volume's blocks are its data: it grows, and never shrinks under what it holds.
            if case .volume(let before)? = oldSpec, case .volume(let after) = try document.resource.spec, after.sizeGB < before.sizeGB {
                throw StoreError.conflict("\(key): spec.sizeGB cannot shrink (\(before.sizeGB) → \(after.sizeGB) GB): a volume only grows; copy its data to a new, smaller volume instead")
            }
            var notes: [String] = []
            if !sameSet {
                notes.append(row.applySet.map { "taken over from apply set \"\($0)\"" } ?? "taken over from the API")
            }
            if row.terminating { notes.append("deletion cancelled") }
            changes.append(PlannedChange(action: .update, key: key, id: row.ec2Id, fields: fields, notes: notes, oldSpec: oldSpec, newSpec: try document.resource.spec, specChanged: specChanged, previousManager: row.manager))
        }
        if options.prune {
            let wanted = Set(documents.map(\.key))
            let members = stored.filter { $0.value.applySet == options.applySet && !$0.value.terminating }
            // A project's default group stays while the project does (it leaves the set at its next write).
            let projects = Set(members.keys.filter { $0.kind == .project && !wanted.contains($0) }.map(\.name))
            let doomed = members.filter { !wanted.contains($0.key) && (!Self.isDefaultGroup($0.key) || projects.contains($0.key.project)) }.sorted { $0.key > $1.key }
            let protected = doomed.filter(\.value.isProtected).map(\.key)
            if !protected.isEmpty { throw StoreError.protected(protected.sorted()) }
            if !options.allowMassDelete && (doomed.count > ApplyOptions.pruneBudget || doomed.count * 2 > members.count) && !doomed.isEmpty {
                throw StoreError.massDelete(count: doomed.count, setSize: members.count, set: options.applySet)
            }
            for (key, row) in doomed {
                let json = try String.fetchOne(db, sql: "SELECT spec FROM resource WHERE id = ?", arguments: [row.id]) ?? "{}"
                changes.append(PlannedChange(action: .delete, key: key, id: row.ec2Id, oldSpec: try ResourceSpec.fromJSON(Data(json.utf8), kind: key.kind), previousManager: row.manager))
            }
        }
        var plan = ApplyPlan(changes: changes)
        plan.storeVersion = version
        if let authorize = options.authorize {
            for change in plan.changes where change.action != .unchanged { try authorize(change) }
        }
        try checkQuotas(db, documents, plan, stored)
        return plan
    }

    // MARK: - Committing

    /// Writes a plan; created resources get their EC2-style ids filled in.
    private func commit(_ db: Database, _ plan: inout ApplyPlan, _ documents: [ManifestDocument], _ options: ApplyOptions) throws {
        let now = Timestamp.string(Date())
        let byKey = Dictionary(documents.indices.map { (documents[$0].key, $0) }, uniquingKeysWith: { first, _ in first })
        let insert = try db.cachedStatement(sql: """
            INSERT INTO resource (kind, project, name, ec2Id, spec, specHash, generation, labels, annotations, applySet, manager, createdAt, updatedAt, fieldManagers)
            VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)
            """)
        // Who writes, as field managers record it: a GitSync's writes name their commit.
        let writer = options.stamp[Self.revisionStamp].map { "\(options.manager)@\($0)" } ?? options.manager
        let created = try CanonicalJSON.string(["*": writer])
        let update = try db.cachedStatement(sql: """
            UPDATE resource SET spec = ?, specHash = ?, generation = generation + ?, labels = ?, annotations = ?, applySet = ?,
                manager = ?, updatedAt = ?, deletionTimestamp = NULL
            WHERE kind = ? AND project = ? AND name = ?
            """)
        let tombstone = try db.cachedStatement(sql: "UPDATE resource SET deletionTimestamp = ?, updatedAt = ? WHERE kind = ? AND project = ? AND name = ?")
        for index in plan.changes.indices {
            let change = plan.changes[index]
            let key = change.key
            switch change.action {
            case .unchanged:
                continue
            case .create:
                let document = documents[byKey[key]!]
                let ec2Id = try options.presetIds[key] ?? key.kind.idPrefix.map { try newEC2Id(db, prefix: $0) }
                plan.changes[index].id = ec2Id
                try insert.execute(arguments: [
                    key.kind.rawValue, key.project, key.name, ec2Id, document.specJSON, document.specHash,
                    document.labelsJSON, try Self.stamped(document.annotationsJSON, options.stamp), options.storedSet, options.manager, now, now, created,
                ])
                try record(db, StoredEvent(time: now, key: key, reason: "Created", message: "created by \(options.manager)", generation: 1))
                if options.keepCreated {
                    var resource = try document.resource
                    resource.metadata.id = ec2Id
                    resource.metadata.generation = 1
                    resource.metadata.applySet = options.storedSet
                    resource.metadata.manager = options.manager
                    resource.metadata.annotations.merge(options.stamp) { _, new in new }
                    resource.metadata.creationTimestamp = now
                    resource.metadata.deletionTimestamp = nil
                    resource.status = nil
                    plan.created.append(StoredResource(resource: resource, specHash: document.specHash))
                }
            case .update:
                let document = documents[byKey[key]!]
                try update.execute(arguments: [
                    document.specJSON, document.specHash, change.specChanged ? 1 : 0, document.labelsJSON, try Self.stamped(document.annotationsJSON, options.stamp),
                    options.storedSet, options.manager, now, key.kind.rawValue, key.project, key.name,
                ])
                try recordFieldManagers(db, key, change, writer: writer)
                let summary = change.fields.prefix(5).map(\.summary).joined(separator: "; ")
                let more = change.fields.count > 5 ? "; … (\(change.fields.count - 5) more)" : ""
                let notes = change.notes.isEmpty ? "" : " (\(change.notes.joined(separator: ", ")))"
                try record(db, StoredEvent(time: now, key: key, reason: "Updated", message: "updated by \(options.manager)\(notes): \(summary)\(more)"))
            case .delete:
                try tombstone.execute(arguments: [now, now, key.kind.rawValue, key.project, key.name])
                try record(db, StoredEvent(time: now, key: key, reason: "Pruned", message: "no longer in apply set \"\(options.applySet)\"; deletion requested"))
                if key.kind == .project {
                    let group = ResourceKey(kind: .securityGroup, project: key.name, name: Self.defaultGroup)
                    try db.cachedStatement(sql: "UPDATE resource SET deletionTimestamp = ?, updatedAt = ? WHERE kind = ? AND project = ? AND name = ? AND deletionTimestamp IS NULL")
                        .execute(arguments: [now, now, group.kind.rawValue, group.project, group.name])
                    if db.changesCount > 0 { try record(db, StoredEvent(time: now, key: group, reason: "Deleting", message: "its project \(key.name) is deleted")) }
                }
                // Volumes attached with deleteOnTermination go with a pruned instance, unless this
                // apply declares them (the manifest's desired state wins).
                if key.kind == .instance {
                    for volume in try Self.volumesDeletedWith(db, instance: key) where byKey[volume] == nil {
                        try tombstone.execute(arguments: [now, now, volume.kind.rawValue, volume.project, volume.name])
                        try record(db, StoredEvent(time: now, key: volume, reason: "Deleting", message: "attached to \(key.name) with deleteOnTermination, which is pruned"))
                    }
                }
            }
        }
        for change in plan.changes where change.key.kind == .project && (change.action == .create || change.notes.contains("deletion cancelled")) {
            try Self.insertDefaultGroup(db, project: change.key.name, now: now)
        }
    }

    /// The stamp key whose value field managers record with the manager (`git:site@<sha>`).
    public static let revisionStamp = "stratus/revision"

    /// Records `writer` as the manager of each top-level field an update changed.
    private func recordFieldManagers(_ db: Database, _ key: ResourceKey, _ change: PlannedChange, writer: String) throws {
        let select = try db.cachedStatement(sql: "SELECT fieldManagers FROM resource WHERE kind = ? AND project = ? AND name = ?")
        let text = try String?.fetchOne(select, arguments: [key.kind.rawValue, key.project, key.name]) ?? nil
        // A row written before field managers were recorded: its other fields' writer is unknown.
        var managers = try text.map { try JSONDecoder().decode([String: String].self, from: Data($0.utf8)) } ?? ["*": "unknown (before v17)"]
        for field in change.fields { managers[Self.fieldOwnerPath(field.path)] = writer }
        if change.notes.contains("deletion cancelled") { managers = ["*": writer] }
        try db.cachedStatement(sql: "UPDATE resource SET fieldManagers = ? WHERE kind = ? AND project = ? AND name = ?")
            .execute(arguments: [try CanonicalJSON.string(managers), key.kind.rawValue, key.project, key.name])
    }

    /// The field a change path is recorded under: a spec field (`spec.ingress[0].toPort` →
    /// `spec.ingress`), or one label or annotation.
    static func fieldOwnerPath(_ path: String) -> String {
        if path.hasPrefix("spec.") {
            let field = path.dropFirst(5).prefix { $0 != "." && $0 != "[" }
            return "spec." + field
        }
        return path
    }

    /// Who set each field of a resource last (`describe`): field path → manager, with "*" for
    /// every field not named; empty for a resource written before this was recorded.
    public func fieldManagers(_ key: ResourceKey) throws -> [String: String] {
        try reading { db in
            let text = try String?.fetchOne(db, sql: "SELECT fieldManagers FROM resource WHERE kind = ? AND project = ? AND name = ?", arguments: [key.kind.rawValue, key.project, key.name]) ?? nil
            return try text.map { try JSONDecoder().decode([String: String].self, from: Data($0.utf8)) } ?? [:]
        }
    }

    /// A fresh EC2-style id (`i-` + 8 hex digits) not used by any resource.
    func newEC2Id(_ db: Database, prefix: String) throws -> String { try Self.newEC2Id(db, prefix: prefix) }

    static func newEC2Id(_ db: Database, prefix: String) throws -> String {
        let exists = try db.cachedStatement(sql: "SELECT 1 FROM resource WHERE ec2Id = ?")
        while true {
            let hex = String(UInt32.random(in: 0...UInt32.max), radix: 16)
            let id = "\(prefix)-\(String(repeating: "0", count: 8 - hex.count))\(hex)"
            if try Int.fetchOne(exists, arguments: [id]) == nil { return id }
        }
    }

    /// Appends an event to the change feed.
    func record(_ db: Database, _ event: StoredEvent) throws { try Self.record(db, event) }

    static func record(_ db: Database, _ event: StoredEvent) throws {
        // Without a request id the column is not named: migration v9 records events (a project's
        // default group) before v18 made the column.
        guard let requestId = event.requestId else {
            try db.cachedStatement(sql: "INSERT INTO event (time, kind, project, name, type, reason, message, generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                .execute(arguments: [event.time, event.kind, event.project, event.name, event.type, event.reason, event.message, event.generation])
            return
        }
        try db.cachedStatement(sql: "INSERT INTO event (time, kind, project, name, type, reason, message, generation, requestId) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .execute(arguments: [event.time, event.kind, event.project, event.name, event.type, event.reason, event.message, event.generation, requestId])
    }
}
