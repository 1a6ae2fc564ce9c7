import Foundation
import GRDB
import StratusModel

extension Store {
    /// Checks that every name a document refers to resolves, within the set or the store.
    ///
    /// A project-scoped resource also refers to its project. A `project/name` image must be
    /// public. A reference the stored resource already holds stays valid for its later updates
    /// even when its target is gone (as on EC2, an instance keeps its key pair, groups and image
    /// when they are deleted); a new or changed reference must resolve. Every failure names the
    /// field's position and suggests the closest existing name.
    func checkReferences(_ db: Database, _ documents: [ManifestDocument], _ stored: [ResourceKey: SnapshotRow]) throws {
        var inSet: [ResourceKey: Int] = [:]  // indices: copying documents into a map costs more than the check
        inSet.reserveCapacity(documents.count)
        for (index, document) in documents.enumerated() { inSet[document.key] = index }
        var errors: [ManifestError] = []
        var namesByScope: [String: [String]]?

        func exists(_ reference: Reference) throws -> Bool {
            let target = reference.target
            if let index = inSet[target] {
                let document = documents[index]
                if reference.allowsPublicImage, case .image(let image) = try document.resource.spec, target.project != document.key.project {
                    return image.public == true
                }
                return true
            }
            guard let row = stored[target] else { return false }
            if reference.allowsPublicImage {
                let json = try String.fetchOne(db, sql: "SELECT spec FROM resource WHERE id = ?", arguments: [row.id]) ?? "{}"
                if case .image(let image) = try ResourceSpec.fromJSON(Data(json.utf8), kind: .image) { return image.public == true }
            }
            return true
        }

        var heldByStored: [ResourceKey: Set<ResourceKey>] = [:]
        /// The targets the stored version of `key` refers to (read only when a reference fails).
        func held(_ key: ResourceKey) throws -> Set<ResourceKey> {
            if let known = heldByStored[key] { return known }
            var targets: Set<ResourceKey> = []
            if let row = stored[key], !row.terminating, let json = try String.fetchOne(db, sql: "SELECT spec FROM resource WHERE id = ?", arguments: [row.id]) {
                let spec = try ResourceSpec.fromJSON(Data(json.utf8), kind: key.kind)
                targets = Set(spec.body.references(project: key.project.isEmpty ? nil : key.project).map(\.target))
            }
            heldByStored[key] = targets
            return targets
        }

        for index in documents.indices {
            for reference in documents[index].references where try !exists(reference) {
                if reference.path != [.key("metadata"), .key("project")], try held(documents[index].key).contains(reference.target) { continue }
                let document = documents[index]
                if namesByScope == nil {
                    var names: [String: [String]] = [:]
                    for key in inSet.keys { names["\(key.kind.rawValue)/\(key.project)", default: []].append(key.name) }
                    namesByScope = names
                }
                let target = reference.target
                // Hints come from the database, since `stored` may hold only the rows this apply touches.
                let storedNames = try String.fetchAll(db, sql: "SELECT name FROM resource WHERE kind = ? AND project = ?", arguments: [target.kind.rawValue, target.project])
                let candidates = (namesByScope!["\(target.kind.rawValue)/\(target.project)"] ?? []) + storedNames
                let publicNote = reference.allowsPublicImage && (inSet[target] != nil || stored[target] != nil) ? " is not public" : " does not exist"
                errors.append(ManifestError(
                    location: document.location(of: reference.path),
                    resource: document.key.description,
                    path: renderPath(reference.path),
                    message: "\(target)\(publicNote) (neither in these files nor in the store)",
                    hint: Suggestion.hint(for: target.name, in: candidates) ?? "create the \(target.kind.rawValue) first or fix the name"
                ))
            }
        }
        if !errors.isEmpty { throw ManifestErrors(errors) }
    }
}
