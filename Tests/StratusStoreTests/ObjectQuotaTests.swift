import Foundation
import GRDB
import StratusModel
import Testing

@testable import StratusStore

/// `quotas.objectGigabytes`: bytes in a project's buckets (objects and upload parts), checked in
/// the object store's write transactions.
@Suite struct ObjectQuotaTests {
    static let mib: Int64 = 1 << 20

    /// A store in a temporary directory (a real WAL database, so writers truly run concurrently),
    /// with project acme (quota `gigabytes` GiB of objects) and its bucket `data`.
    static func store(objectGigabytes: Int) throws -> (Store, String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-quota-\(UUID().uuidString.prefix(8))").path
        let store = try Store(dataDirectory: directory)
        let manifest = """
            apiVersion: stratus/v1
            kind: User
            metadata: {name: alice}
            spec: {}
            ---
            apiVersion: stratus/v1
            kind: Project
            metadata: {name: acme}
            spec: {manager: alice, quotas: {objectGigabytes: \(objectGigabytes)}}

            """
        try store.apply(try documents(manifest), options: ApplyOptions())
        _ = try store.createBucket("data", project: "acme")
        return (store, directory)
    }

    static func object(_ key: String, size: Int64) -> ObjectRecord {
        ObjectRecord(bucket: "data", key: key, file: UUID().uuidString, size: size, etag: "\"e\"", lastModified: "2026-01-01T00:00:00Z", headers: [:], checksums: [:])
    }

    @Test("objects count against quotas.objectGigabytes: a write up to it passes, one past it is refused and changes nothing")
    func objects() throws {
        let (store, directory) = try Self.store(objectGigabytes: 1)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(try store.putObject(Self.object("a", size: 600 * Self.mib)).written)
        #expect(throws: ObjectQuotaExceeded.self, "600 MiB more would make 1200 MiB") { try store.putObject(Self.object("b", size: 600 * Self.mib)) }
        #expect(try store.object(bucket: "data", key: "b") == nil, "the refused object is not recorded")
        #expect(try store.objectUsage(project: "acme") == 600 * Self.mib)
        #expect(try store.putObject(Self.object("a", size: 1024 * Self.mib)).written, "replacing a counts only the difference: exactly 1 GiB is allowed")
        #expect(try store.objectUsage(project: "acme") == 1024 * Self.mib)
        #expect(throws: ObjectQuotaExceeded.self, "one byte past the quota") { try store.putObject(Self.object("c", size: 1)) }
        #expect(try store.putObject(Self.object("empty", size: 0)).written, "an empty object adds nothing, so a full project may still write one")
        #expect(try store.putObject(Self.object("a", size: 10 * Self.mib)).written, "a smaller replacement frees room")
        #expect(try store.objectUsage(project: "acme") == 10 * Self.mib)
        _ = try store.deleteObject(bucket: "data", key: "a")
        #expect(try store.objectUsage(project: "acme") == 0)
    }

    @Test("the parts of an upload in progress count; completing it adds nothing; aborting it frees the room")
    func parts() throws {
        let (store, directory) = try Self.store(objectGigabytes: 1)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try store.createUpload(UploadRecord(id: "u1", bucket: "data", key: "big", initiated: "2026-01-01T00:00:00Z", headers: [:]))
        func part(_ number: Int, _ size: Int64) -> PartRecord { PartRecord(number: number, file: UUID().uuidString, size: size, etag: "\"p\"", lastModified: "2026-01-01T00:00:00Z") }
        #expect(try store.putPart(upload: "u1", part(1, 512 * Self.mib)).recorded)
        #expect(try store.putPart(upload: "u1", part(2, 512 * Self.mib)).recorded)
        #expect(throws: ObjectQuotaExceeded.self, "a third part passes the quota") { try store.putPart(upload: "u1", part(3, 1)) }
        #expect(throws: ObjectQuotaExceeded.self, "and so does an object beside the upload") { try store.putObject(Self.object("other", size: 1)) }
        #expect(try store.putPart(upload: "u1", part(2, 100 * Self.mib)).recorded, "a part uploaded again counts only its new size")
        #expect(try store.objectUsage(project: "acme") == 612 * Self.mib)
        #expect(try store.finishUpload("u1", object: Self.object("big", size: 612 * Self.mib)).written, "the object takes its parts' place")
        #expect(try store.objectUsage(project: "acme") == 612 * Self.mib)
        try store.createUpload(UploadRecord(id: "u2", bucket: "data", key: "next", initiated: "2026-01-01T00:00:00Z", headers: [:]))
        #expect(try store.putPart(upload: "u2", part(1, 400 * Self.mib)).recorded)
        _ = try store.finishUpload("u2")
        #expect(try store.objectUsage(project: "acme") == 612 * Self.mib, "an aborted upload's parts no longer count")
    }

    @Test("concurrent uploads cannot together pass the quota: the check runs in each write's transaction")
    func concurrent() async throws {
        let (store, directory) = try Self.store(objectGigabytes: 1)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let written = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<12 {
                group.addTask {
                    do { return try store.putObject(Self.object("k\(index)", size: 300 * Self.mib)).written } catch is ObjectQuotaExceeded { return false }
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(written == 3, "3 × 300 MiB fit in 1 GiB, a fourth does not")
        #expect(try store.objectUsage(project: "acme") == 900 * Self.mib)
    }

    @Test("objectGigabytes defaults to 1000 and must be between 0 and 1,000,000")
    func defaultsAndRange() throws {
        var quotas = Quotas()
        quotas.applyDefaults()
        #expect(quotas.objectGigabytes == 1000)
        let store = try makeStore()
        let manifest = "apiVersion: stratus/v1\nkind: User\nmetadata: {name: alice}\nspec: {}\n---\napiVersion: stratus/v1\nkind: Project\nmetadata: {name: acme}\nspec: {manager: alice, quotas: {objectGigabytes: -1}}\n"
        #expect(throws: ManifestErrors.self) { try store.apply(try documents(manifest), options: ApplyOptions()) }
    }

    @Test("v13 counts what a database already holds and gives projects stored before the quota its default, unchanged for the same manifest")
    func migration() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-v12-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let old = try DatabaseQueue(path: path)
        try Store.migrator.migrate(old, upTo: "v12-object-tags")
        let before = #"{"description":"","manager":"alice","quotas":{"addresses":10,"cores":20,"gigabytes":1000,"instances":10,"ram":51200,"securityGroups":10,"volumes":10}}"#
        try old.write { db in
            try db.execute(sql: """
                INSERT INTO resource (kind, project, name, spec, specHash, generation, applySet, manager, createdAt, updatedAt)
                VALUES ('User', '', 'alice', '{}', 'x', 1, 'default', 'apply:default', '', ''),
                       ('Project', '', 'acme', ?, 'x', 4, 'default', 'apply:default', '', '');
                INSERT INTO bucket (name, project, createdAt) VALUES ('data', 'acme', ''), ('other', 'zeta', '');
                INSERT INTO object (bucket, key, file, size, etag, lastModified) VALUES ('data', 'a', 'f1', 100, 'e', ''), ('data', 'b', 'f2', 20, 'e', ''), ('other', 'c', 'f3', 7, 'e', '');
                INSERT INTO upload (id, bucket, key, initiated) VALUES ('u', 'data', 'x', '');
                INSERT INTO part (upload, number, file, size, etag, lastModified) VALUES ('u', 1, 'f4', 3, 'e', '');
                """, arguments: [before])
        }
        try old.close()
        let store = try Store(writer: DatabaseQueue(path: path), seedCatalog: false)
        #expect(try store.objectUsage(project: "acme") == 123 && store.objectUsage(project: "zeta") == 7)
        let project = try #require(try store.get(ResourceKey(kind: .project, project: nil, name: "acme")))
        #expect(project.generation == 4, "filling in a default is no spec change")
        guard case .project(let spec) = project.resource.spec else { Issue.record("not a project"); return }
        #expect(spec.quotas?.objectGigabytes == 1000)
        let manifest = "apiVersion: stratus/v1\nkind: Project\nmetadata: {name: acme}\nspec: {manager: alice}\n"
        let plan = try store.plan(try ManifestLoader.load([ManifestSource(name: "p.yaml", data: Data(manifest.utf8))]), options: ApplyOptions())
        #expect(plan.changes.map(\.action) == [.unchanged])
    }
}
