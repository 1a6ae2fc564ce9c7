import Foundation
import GRDB
import StratusModel
import Testing

@testable import StratusStore

@Suite struct MigrationTests {
    @Test("an empty database is migrated to every named migration")
    func fromEmpty() throws {
        let store = try makeStore(seedCatalog: false)
        #expect(try store.appliedMigrations() == ["v1-resources-events", "v2-allocations-cursors", "v3-manifest-cache", "v4-credentials", "v5-instance-type-index"])
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
                VALUES ('Volume', 'acme', 'data', 'vol-0000beef', '{"sizeGB":5}', 'x', 3, '{}', '{}', 'old', 'apply:old', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')
                """)
        }
        try old.close()
        let store = try Store(writer: DatabaseQueue(path: path), seedCatalog: false)
        #expect(try store.appliedMigrations() == ["v1-resources-events", "v2-allocations-cursors", "v3-manifest-cache", "v4-credentials", "v5-instance-type-index"])
        let volume = try #require(try store.get(ec2Id: "vol-0000beef"))
        #expect(volume.generation == 3)
        #expect(volume.resource.spec == .volume(VolumeSpec(sizeGB: 5)))
        let owner = ResourceKey(kind: .volume, project: "acme", name: "data")
        #expect(try store.allocate(pool: "aoe", candidates: ["e1.1", "e1.2"], owner: owner) == "e1.1")
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
