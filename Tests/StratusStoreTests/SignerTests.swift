import Foundation
import GRDB
import StratusModel
import Synchronization
import Testing

@testable import StratusStore

@Suite struct SignerTests {
    /// Two stores on one data directory: `other` stands for another process (the CLI) writing
    /// the same database while `server` keeps signers in memory.
    func twoStores() throws -> (server: Store, other: Store, cleanup: () -> Void) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-signer-\(UUID().uuidString)").path
        return (try Store(dataDirectory: directory), try Store(dataDirectory: directory), { try? FileManager.default.removeItem(atPath: directory) })
    }

    func identityVersion(_ store: Store) throws -> Int64 {
        try store.writer.read { db in try Int64.fetchOne(db, sql: "SELECT version FROM identityVersion") ?? -1 }
    }

    @Test("a kept signer follows rotation, disabling, projects and deletion written by another connection")
    func followsOtherWriters() throws {
        let (server, other, cleanup) = try twoStores()
        defer { cleanup() }
        try server.apply(try documents(acme(instances: 0)), options: ApplyOptions())
        let key = try server.credential(user: "alice")
        let first = try #require(try server.signer(accessKey: key.accessKey))
        #expect(first.credential.secretKey == key.secretKey && first.user?.disabled == false && first.manages == ["acme"])
        let version = try identityVersion(server)
        #expect(server.signers.withLock { $0.version == version && $0.entries[key.accessKey] != nil }, "kept in memory at the current version")

        let rotated = try other.rotateCredential(user: "alice")
        #expect(rotated.secretKey != key.secretKey)
        #expect(try server.signer(accessKey: key.accessKey)?.credential.secretKey == rotated.secretKey, "the old secret stops working at once")

        try other.apply(try documents("apiVersion: stratus/v1\nkind: User\nmetadata: {name: alice}\nspec: {disabled: true, projects: [{project: acme, roles: [sysadmin]}]}\n"), options: ApplyOptions())
        #expect(try server.signer(accessKey: key.accessKey)?.user?.disabled == true)

        _ = try other.delete([ResourceKey(kind: .project, project: nil, name: "acme")])
        #expect(try server.signer(accessKey: key.accessKey)?.manages == [], "a project being deleted is managed by nobody")

        try other.deleteCredentials(user: "alice")
        #expect(try server.signer(accessKey: key.accessKey) == nil)
    }

    @Test("instance writes leave the identity version alone; user and project writes bump it")
    func versionScope() throws {
        let store = try makeStore()
        try store.apply(try documents(acme(instances: 0)), options: ApplyOptions())
        let before = try identityVersion(store)
        try store.apply(try documents(acme(instances: 3)), options: ApplyOptions())
        _ = try store.delete([ResourceKey(kind: .instance, project: "acme", name: "web-0")])
        _ = try store.updateStatus(ResourceKey(kind: .user, project: nil, name: "alice"), ResourceStatus(phase: "Ready"))
        #expect(try identityVersion(store) == before, "instances and statuses do not touch it")
        try store.apply(try documents(acme(instances: 3).replacingOccurrences(of: "roles: [sysadmin]", with: "roles: [netadmin]")), options: ApplyOptions())
        #expect(try identityVersion(store) == before + 1)
        _ = try store.credential(user: "alice")
        #expect(try identityVersion(store) == before + 2)
    }

    @Test("an apply that keeps what it created returns each resource as the store then reads it")
    func keptCreated() throws {
        let store = try makeStore()
        try store.apply(try documents(acme(instances: 0)), options: ApplyOptions())
        var options = ApplyOptions.api
        options.keepCreated = true
        let resource = Resource(
            metadata: ObjectMeta(name: "i-0000abcd", project: "acme", labels: ["Name": "web"], annotations: ["note": "x"]),
            spec: .instance(InstanceSpec(image: "debian", instanceType: "m1.tiny"))
        )
        let plan = try store.apply([try ManifestDocument(resource: resource)], options: options)
        let stored = try #require(try store.get(resource.key))
        #expect(plan.created == [stored])
        #expect(try store.apply([try ManifestDocument(resource: resource)], options: options).created == [], "nothing created, nothing kept")
    }
}
