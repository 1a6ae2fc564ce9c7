import Foundation
import GRDB
import StratusModel

extension Store {
    /// Refuses an access key that another user already has (in these files, in the store, or issued).
    func checkAccessKeys(_ db: Database, _ documents: [ManifestDocument]) throws {
        var wanted: [(key: String, user: String, index: Int)] = []
        // Only a spec whose canonical JSON has the key is decoded: decoding every user's costs at 100,000 documents.
        for (index, document) in documents.enumerated() where document.key.kind == .user && Self.mentions(document.specJSON, Self.accessKeyField) {
            if case .user(let spec) = try document.resource.spec, let key = spec.accessKey { wanted.append((key, document.key.name, index)) }
        }
        guard !wanted.isEmpty else { return }
        var owners: [String: String] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT accessKey, user FROM credential") { owners[row["accessKey"]] = row["user"] }
        let inSet = Set(wanted.map(\.user))
        for row in try Row.fetchAll(db, sql: "SELECT name, spec FROM resource WHERE kind = ? AND spec LIKE '%accessKey%'", arguments: [Kind.user.rawValue]) {
            let name: String = row["name"]
            guard !inSet.contains(name), case .user(let spec) = try ResourceSpec.fromJSON(Data((row["spec"] as String).utf8), kind: .user), let key = spec.accessKey else { continue }
            owners[key] = owners[key] ?? name
        }
        var errors: [ManifestError] = []
        var seen: [String: String] = [:]
        for item in wanted {
            let path: [PathElement] = [.key("spec"), .key("accessKey")]
            let other = seen[item.key] ?? owners[item.key].flatMap { $0 == item.user ? nil : $0 }
            if let other {
                errors.append(ManifestError(
                    location: documents[item.index].location(of: path),
                    resource: documents[item.index].key.description,
                    path: renderPath(path),
                    message: "access key \(item.key) already belongs to user \(other)",
                    hint: "access keys are unique; leave accessKey out to have one generated"
                ))
            }
            seen[item.key] = seen[item.key] ?? item.user
        }
        if !errors.isEmpty { throw ManifestErrors(errors) }
    }

    /// `"accessKey":` as canonical JSON writes the field.
    private static let accessKeyField = Array(#""accessKey":"#.utf8)
}
