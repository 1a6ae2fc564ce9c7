import Foundation
import GRDB
import StratusModel
import StratusStore

/// A store in a fresh in-memory database, with the built-in catalog.
func makeStore(seedCatalog: Bool = true) throws -> Store {
    try Store(writer: DatabaseQueue(), seedCatalog: seedCatalog)
}

/// Parses manifest text as one file.
func documents(_ text: String, project: String? = nil) throws -> [ManifestDocument] {
    try ManifestLoader.load([ManifestSource(name: "test.yaml", data: Data(text.utf8))], defaultProject: project)
}

/// The acme project: a user, the project, an image and `count` instances.
func acme(instances count: Int = 3, type: String = "m1.small", labels: String = "{}") -> String {
    var text = """
        apiVersion: stratus/v1
        kind: User
        metadata: {name: alice}
        spec: {projects: [{project: acme, roles: [sysadmin]}]}
        ---
        apiVersion: stratus/v1
        kind: Project
        metadata: {name: acme}
        spec: {manager: alice, quotas: {instances: 100000, cores: 1000000, ram: 1000000000}}
        ---
        apiVersion: stratus/v1
        kind: Image
        metadata: {name: debian, project: acme}
        spec: {source: /images/debian.qcow2}

        """
    for index in 0..<count {
        text += """
            ---
            apiVersion: stratus/v1
            kind: Instance
            metadata: {name: web-\(index), project: acme, labels: \(labels)}
            spec: {image: debian, instanceType: \(type)}

            """
    }
    return text
}
