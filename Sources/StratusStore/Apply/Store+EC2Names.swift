import Foundation
import GRDB
import StratusModel

extension Store {
    /// Keeps EC2 names (`EC2Name`) unique per project and kind: a key pair or security group of
    /// the set may not take the EC2 name another one holds, in the set or in the store (the
    /// EC2 API finds them by that name). Reads the names of only the projects the set touches.
    func checkEC2Names(_ db: Database, _ documents: [ManifestDocument]) throws {
        var claimed: [String: (name: String, index: Int)] = [:]  // "Kind/project/EC2 name"
        var storedNames: [String: [String: String]] = [:]  // "Kind/project" → EC2 name → resource name
        var errors: [ManifestError] = []
        var inSet: Set<ResourceKey>?
        for index in documents.indices where EC2Name.kinds.contains(documents[index].key.kind) {
            let document = documents[index]
            let key = document.key
            let ec2Name = EC2Name.of(try document.resource.metadata)
            let scope = "\(key.kind.rawValue)/\(key.project)"
            func conflict(_ other: String) {
                errors.append(ManifestError(
                    location: document.location(of: [.key("metadata"), .key("annotations"), .key(EC2Name.annotation)]),
                    resource: key.description, path: "metadata.annotations.\(EC2Name.annotation)",
                    message: "the EC2 name \"\(ec2Name)\" is already \(key.kind.rawValue) \(key.project)/\(other)'s, and EC2 names are unique in a project",
                    hint: "choose another EC2 name, or rename it on \(other)",
                    code: key.kind == .keyPair ? "InvalidKeyPair.Duplicate" : "InvalidGroup.Duplicate"))
            }
            if let earlier = claimed["\(scope)/\(ec2Name)"], earlier.name != key.name {
                conflict(earlier.name)
                continue
            }
            claimed["\(scope)/\(ec2Name)"] = (key.name, index)
            if storedNames[scope] == nil {
                var names: [String: String] = [:]
                let rows = try Row.fetchAll(db.cachedStatement(sql: """
                    SELECT name, json_extract(annotations, '$."\(EC2Name.annotation)"') FROM resource
                    WHERE kind = ? AND project = ? AND deletionTimestamp IS NULL
                    """), arguments: [key.kind.rawValue, key.project])
                for row in rows {
                    let name: String = row[0]
                    names[(row[1] as String?) ?? name] = name
                }
                storedNames[scope] = names
            }
            // A stored holder that is itself in the set is judged by its new EC2 name.
            if let holder = storedNames[scope]?[ec2Name], holder != key.name {
                if inSet == nil { inSet = Set(documents.map(\.key)) }
                if !inSet!.contains(ResourceKey(kind: key.kind, project: key.project, name: holder)) { conflict(holder) }
            }
        }
        if !errors.isEmpty { throw ManifestErrors(errors) }
    }
}
