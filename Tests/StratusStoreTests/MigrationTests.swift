import Foundation
import GRDB
import StratusModel
import Testing

@testable import StratusStore

@Suite struct MigrationTests {
    @Test("in a data directory open to others (0755), the store's files are still owner-only")
    func fileModes() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-modes-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let store = try Store(dataDirectory: directory)
        _ = try store.credential(user: Store.rootUser)  // writes through the WAL and seals a secret
        for file in ["stratus.sqlite", "stratus.sqlite-wal", "stratus.sqlite-shm", "secret.key"] {
            let mode = try #require(try FileManager.default.attributesOfItem(atPath: "\(directory)/\(file)")[.posixPermissions] as? Int, "\(file)")
            #expect(mode & 0o077 == 0, "\(file) is \(String(mode, radix: 8))")
        }
    }

    @Test("an empty database is migrated to every named migration")
    func fromEmpty() throws {
        let store = try makeStore(seedCatalog: false)
        #expect(try store.appliedMigrations() == ["v1-resources-events", "v2-allocations-cursors", "v3-manifest-cache", "v4-credentials", "v5-instance-type-index", "v6-instance-usage", "v7-identity-version", "v8-project-quota-defaults", "v9-default-security-groups", "v10-object-store", "v11-object-md5", "v12-object-tags", "v13-object-quota", "v14-inline-objects", "v15-bucket-tags", "v16-desired-version", "v17-field-managers", "v18-event-request-id", "v19-status-summary"])
    }

    @Test("a database of the previous version keeps its data when migrated")
    func fromPrevious() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-v1-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let old = try DatabaseQueue(path: path)
        try Store.migrator.migrate(old, upTo: "v1-resources-events")
        try old.write { db in
            try db.execute(sql: """
                INSERT INTO resource (kind, project, name, ec2Id, spec, specHash, generation, labels, annotations, applySet, manager, createdAt, updatedAt)
                VALUES ('Volume', 'acme', 'data', 'vol-0000beef', '{"sizeGB":5}', 'x', 3, '{}', '{}', 'old', 'apply:old', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
                INSERT INTO resource (kind, project, name, ec2Id, spec, specHash, generation, manager, createdAt, updatedAt, deletionTimestamp)
                VALUES ('Instance', 'acme', 'a', 'i-0000000a', '{"image":"x","instanceType":"m1.small"}', 'x', 1, 'api', '', '', NULL),
                       ('Instance', 'acme', 'b', 'i-0000000b', '{"image":"x","instanceType":"m1.small"}', 'x', 1, 'api', '', '', NULL),
                       ('Instance', 'acme', 'c', 'i-0000000c', '{"image":"x","instanceType":"m1.large"}', 'x', 1, 'api', '', '', '2026-01-01T00:00:00Z');
                """)
        }
        try old.close()
        let store = try Store(writer: DatabaseQueue(path: path), seedCatalog: false)
        #expect(try store.appliedMigrations() == ["v1-resources-events", "v2-allocations-cursors", "v3-manifest-cache", "v4-credentials", "v5-instance-type-index", "v6-instance-usage", "v7-identity-version", "v8-project-quota-defaults", "v9-default-security-groups", "v10-object-store", "v11-object-md5", "v12-object-tags", "v13-object-quota", "v14-inline-objects", "v15-bucket-tags", "v16-desired-version", "v17-field-managers", "v18-event-request-id", "v19-status-summary"])
        let volume = try #require(try store.get(ec2Id: "vol-0000beef"))
        #expect(volume.generation == 3)
        #expect(volume.resource.spec == .volume(VolumeSpec(sizeGB: 5)))
        #expect(try store.instanceTypeCounts(project: "acme") == ["m1.small": 2], "v6 counts the live instances already there")
        let owner = ResourceKey(kind: .volume, project: "acme", name: "data")
        #expect(try store.allocate(pool: "aoe", candidates: ["e1.1", "e1.2"], owner: owner) == "e1.1")
    }

    @Test("projects stored before the ram and securityGroups quotas get their defaults, and the same manifest is then unchanged")
    func quotaDefaults() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-v7-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let old = try DatabaseQueue(path: path)
        try Store.migrator.migrate(old, upTo: "v7-identity-version")
        let before = #"{"description":"","manager":"alice","quotas":{"addresses":10,"cores":20,"gigabytes":1000,"instances":10,"volumes":10}}"#
        try old.write { db in
            try db.execute(sql: """
                INSERT INTO resource (kind, project, name, spec, specHash, generation, applySet, manager, createdAt, updatedAt)
                VALUES ('User', '', 'alice', '{}', 'x', 1, 'default', 'apply:default', '', ''),
                       ('Project', '', 'acme', ?, 'x', 4, 'default', 'apply:default', '', '')
                """, arguments: [before])
        }
        try old.close()
        let store = try Store(writer: DatabaseQueue(path: path), seedCatalog: false)
        let project = try #require(try store.get(ResourceKey(kind: .project, project: nil, name: "acme")))
        #expect(project.generation == 4, "filling in defaults is no spec change")
        guard case .project(let spec) = project.resource.spec else { Issue.record("not a project"); return }
        #expect(spec.quotas?.ram == 51_200 && spec.quotas?.securityGroups == 10 && spec.quotas?.instances == 10)
        let manifest = "apiVersion: stratus/v1\nkind: Project\nmetadata: {name: acme}\nspec: {manager: alice}\n"
        let plan = try store.plan(try ManifestLoader.load([ManifestSource(name: "p.yaml", data: Data(manifest.utf8))]), options: ApplyOptions())
        #expect(plan.changes.map(\.action) == [.unchanged])
        let group = try #require(try store.get(ResourceKey(kind: .securityGroup, project: "acme", name: Store.defaultGroup)), "v9 gives the project stored before its default security group")
        #expect(group.metadata.id?.hasPrefix("sg-") == true && group.metadata.manager == "stratus")
    }

    @Test("instance usage per project and type follows creates, type changes, tombstones and deletes")
    func instanceUsage() throws {
        let store = try makeStore()
        func apply(_ types: [String: String]) throws {
            var text = "apiVersion: stratus/v1\nkind: User\nmetadata: {name: alice}\nspec: {}\n---\napiVersion: stratus/v1\nkind: Project\nmetadata: {name: acme}\nspec: {manager: alice}\n---\napiVersion: stratus/v1\nkind: Image\nmetadata: {name: debian, project: acme}\nspec: {source: /images/debian.qcow2}\n"
            for (name, type) in types.sorted(by: { $0.key < $1.key }) {
                text += "---\napiVersion: stratus/v1\nkind: Instance\nmetadata: {name: \(name), project: acme}\nspec: {image: debian, instanceType: \(type)}\n"
            }
            try store.apply(try ManifestLoader.load([ManifestSource(name: "u.yaml", data: Data(text.utf8))]), options: ApplyOptions())
        }
        try apply(["a": "m1.tiny", "b": "m1.tiny", "c": "m1.small"])
        #expect(try store.instanceTypeCounts(project: "acme") == ["m1.tiny": 2, "m1.small": 1])
        try apply(["a": "m1.tiny", "b": "m1.large", "c": "m1.small"])
        #expect(try store.instanceTypeCounts(project: "acme") == ["m1.tiny": 1, "m1.small": 1, "m1.large": 1])
        let c = ResourceKey(kind: .instance, project: "acme", name: "c")
        _ = try store.delete([c])
        #expect(try store.instanceTypeCounts(project: "acme") == ["m1.tiny": 1, "m1.large": 1], "a tombstone no longer counts")
        try store.finalizeDeletion(c)
        #expect(try store.instanceTypeCounts(project: "acme") == ["m1.tiny": 1, "m1.large": 1])
        try apply(["a": "m1.tiny", "b": "m1.large", "c": "m1.small"])
        #expect(try store.instanceTypeCounts(project: "acme") == ["m1.tiny": 1, "m1.small": 1, "m1.large": 1])
        #expect(try store.instanceTypeCounts(project: "other").isEmpty)

        // Admission's quota check reads these counts inside the apply's transaction.
        let d = "apiVersion: stratus/v1\nkind: Project\nmetadata: {name: acme}\nspec: {manager: alice, quotas: {instances: 3}}\n---\napiVersion: stratus/v1\nkind: Instance\nmetadata: {name: d, project: acme}\nspec: {image: debian, instanceType: m1.tiny}\n"
        #expect(throws: ManifestErrors.self) { try store.apply(try ManifestLoader.load([ManifestSource(name: "d.yaml", data: Data(d.utf8))]), options: ApplyOptions(applySet: "q")) }
        #expect(try store.get(ResourceKey(kind: .instance, project: "acme", name: "d")) == nil, "nothing was written")
        #expect(try store.instanceTypeCounts(project: "acme") == ["m1.tiny": 1, "m1.small": 1, "m1.large": 1])
    }

    @Test("allocations are unique per pool and stable per owner")
    func allocations() throws {
        let store = try makeStore(seedCatalog: false)
        let a = ResourceKey(kind: .network, project: "p", name: "a")
        let b = ResourceKey(kind: .network, project: "p", name: "b")
        let vlans = (100...101).map(String.init)
        #expect(try store.allocate(pool: "vlan", candidates: vlans, owner: a) == "100")
        #expect(try store.allocate(pool: "vlan", candidates: vlans, owner: a) == "100")
        #expect(try store.allocate(pool: "vlan", candidates: vlans, owner: b) == "101")
        #expect(try store.allocate(pool: "vlan", candidates: vlans, owner: ResourceKey(kind: .network, project: "p", name: "c")) == nil)
        try store.release(pool: "vlan", owner: a)
        #expect(try store.allocate(pool: "vlan", candidates: vlans, owner: ResourceKey(kind: .network, project: "p", name: "c")) == "100")
    }
}

@Suite struct ConcurrentOpenTests {
    @Test("processes opening a new data directory at once all succeed: migrations take turns")
    func concurrentOpens() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-open-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Threads of this process stand in for processes: each opens its own connection pool,
        // as a serve and a CLI command would, and SQLite's locking is per connection.
        let results = await withTaskGroup(of: String?.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    await withCheckedContinuation { continuation in
                        DispatchQueue.global().async {
                            do {
                                _ = try Store(dataDirectory: directory)
                                continuation.resume(returning: nil)
                            } catch {
                                continuation.resume(returning: "\(error)")
                            }
                        }
                    }
                }
            }
            var failures: [String] = []
            for await failure in group { if let failure { failures.append(failure) } }
            return failures
        }
        #expect(results.isEmpty, "\(results)")
    }
}
