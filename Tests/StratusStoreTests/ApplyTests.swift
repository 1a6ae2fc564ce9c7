import Foundation
import GRDB
import StratusModel
import Testing

@testable import StratusStore

@Suite struct ApplyTests {
    @Test("applying creates resources with stable EC2-style ids, and re-applying changes nothing")
    func createThenUnchanged() throws {
        let store = try makeStore()
        let plan = try store.apply(try documents(acme()), options: ApplyOptions())
        #expect(plan.count(.create) == 6)
        let web0 = try #require(try store.get(ResourceKey(kind: .instance, project: "acme", name: "web-0")))
        let id = try #require(web0.metadata.id)
        #expect(id.wholeMatch(of: /i-[0-9a-f]{8}/) != nil)
        #expect(web0.generation == 1)
        #expect(web0.metadata.applySet == "default")
        #expect(web0.metadata.manager == "apply:default")
        let eventsBefore = try store.lastEventSeq()
        let again = try store.apply(try documents(acme()), options: ApplyOptions())
        #expect(again.count(.unchanged) == 6)
        #expect(!again.hasChanges)
        #expect(try store.lastEventSeq() == eventsBefore)
        #expect(try store.get(web0.key)?.metadata.id == id)
    }

    @Test("generation bumps on a real spec change only, not on labels or a no-op")
    func generation() throws {
        let store = try makeStore()
        let key = ResourceKey(kind: .instance, project: "acme", name: "web-0")
        try store.apply(try documents(acme(instances: 1)), options: ApplyOptions())
        let labelled = try store.apply(try documents(acme(instances: 1, labels: "{tier: web}")), options: ApplyOptions())
        #expect(labelled.count(.update) == 1)
        #expect(labelled.changes.first { $0.key == key }?.fields.map(\.summary) == ["metadata.labels.tier: (none) → web"])
        #expect(try store.get(key)?.generation == 1)
        let resized = try store.apply(try documents(acme(instances: 1, type: "m1.large", labels: "{tier: web}")), options: ApplyOptions())
        #expect(resized.changes.first { $0.key == key }?.fields.map(\.summary) == ["spec.instanceType: m1.small → m1.large"])
        #expect(try store.get(key)?.generation == 2)
        try store.apply(try documents(acme(instances: 1, type: "m1.large", labels: "{tier: web}")), options: ApplyOptions())
        #expect(try store.get(key)?.generation == 2)
    }

    @Test("an error in the 500th document leaves the store unchanged")
    func transactionalOnValidation() throws {
        let store = try makeStore()
        try store.apply(try documents(acme(instances: 1)), options: ApplyOptions())
        let countBefore = try store.count()
        let seqBefore = try store.lastEventSeq()
        var text = acme(instances: 600)
        text = text.replacingOccurrences(of: "metadata: {name: web-499, project: acme, labels: {}}\nspec: {image: debian,", with: "metadata: {name: web-499, project: acme, labels: {}}\nspec: {image: debain,")
        let error = try #require(throws: ManifestErrors.self) { try store.apply(try documents(text), options: ApplyOptions()) }
        #expect(error.errors.count == 1)
        #expect(error.errors[0].resource == "Instance acme/web-499")
        #expect(error.errors[0].message == "Image acme/debain does not exist (neither in these files nor in the store)")
        #expect(error.errors[0].hint == "did you mean \"debian\"?")
        #expect(try store.count() == countBefore)
        #expect(try store.lastEventSeq() == seqBefore)
    }

    @Test("a failure in the middle of writing rolls the whole set back")
    func transactionalOnWrite() throws {
        let queue = try DatabaseQueue()
        let store = try Store(writer: queue)
        try queue.write { db in
            try db.execute(sql: "CREATE TRIGGER boom BEFORE INSERT ON resource WHEN NEW.name = 'web-499' BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        }
        let countBefore = try store.count()
        #expect(throws: DatabaseError.self) { try store.apply(try documents(acme(instances: 600)), options: ApplyOptions()) }
        #expect(try store.count() == countBefore)
        #expect(try store.list(kind: .instance).isEmpty)
    }

    @Test("references resolve within the set, the store, and to public images of other projects")
    func references() throws {
        let store = try makeStore()
        try store.apply(try documents(acme(instances: 0)), options: ApplyOptions())
        let other = """
            apiVersion: stratus/v1
            kind: Project
            metadata: {name: beta}
            spec: {manager: alice}
            ---
            apiVersion: stratus/v1
            kind: Instance
            metadata: {name: b1, project: beta}
            spec: {image: acme/debian, instanceType: m1.tiny}
            """
        let error = try #require(throws: ManifestErrors.self) { try store.apply(try documents(other), options: ApplyOptions()) }
        #expect(error.errors.map(\.message) == ["Image acme/debian is not public (neither in these files nor in the store)"])
        let publicImage = "---\napiVersion: stratus/v1\nkind: Image\nmetadata: {name: debian, project: acme}\nspec: {source: /images/debian.qcow2, public: true}\n"
        try store.apply(try documents(other + "\n" + publicImage), options: ApplyOptions(applySet: "beta"))
        #expect(try store.get(ResourceKey(kind: .instance, project: "beta", name: "b1")) != nil)
    }

    @Test("a project-scoped resource needs its project to exist")
    func projectMustExist() throws {
        let store = try makeStore()
        let text = "apiVersion: stratus/v1\nkind: Volume\nmetadata: {name: v, project: nope}\nspec: {sizeGB: 1}\n"
        let error = try #require(throws: ManifestErrors.self) { try store.apply(try documents(text), options: ApplyOptions()) }
        #expect(error.errors.map(\.description) == ["test.yaml:3:30: Volume nope/v: metadata.project: Project nope does not exist (neither in these files nor in the store); create the Project first or fix the name"])
    }

    @Test("the built-in catalog is applied once, on first open")
    func catalogSeeded() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try Store(dataDirectory: directory)
        #expect(try store.list(kind: .instanceType).map(\.metadata.name) == ["c1.medium", "m1.large", "m1.medium", "m1.small", "m1.tiny", "m1.xlarge"])
        _ = try store.delete([ResourceKey(kind: .instanceType, project: nil, name: "m1.tiny")])
        _ = try store.finalizeDeletion(ResourceKey(kind: .instanceType, project: nil, name: "m1.tiny"))
        let reopened = try Store(dataDirectory: directory)
        #expect(try reopened.list(kind: .instanceType).count == 5)
    }

    @Test("what the EC2 API made in the given projects (or all) is found by key and id, without sets, other managers or deleted ones")
    func madeThroughAPI() throws {
        let store = try makeStore()
        try store.apply(try documents(acme(instances: 1)), options: ApplyOptions())
        func instance(_ name: String) throws -> ManifestDocument {
            try ManifestDocument(resource: Resource(
                metadata: ObjectMeta(name: name, project: "acme"),
                spec: .instance(InstanceSpec(image: "debian", instanceType: "m1.tiny"))
            ))
        }
        try store.apply([try instance("api-b"), try instance("api-a"), try instance("api-gone")], options: .api)
        try store.apply([try instance("other-manager")], options: ApplyOptions(applySet: "", manager: "someone"))
        _ = try store.delete([ResourceKey(kind: .instance, project: "acme", name: "api-gone")])
        let found = try store.madeThroughAPI(projects: ["acme", "elsewhere"])
        #expect(found.map(\.key.name) == ["api-a", "api-b"])
        #expect(found.allSatisfy { $0.id?.hasPrefix("i-") == true })
        #expect(try store.madeThroughAPI(projects: ["elsewhere"]).isEmpty)
        #expect(try store.madeThroughAPI(projects: []).isEmpty)
        #expect(try store.madeThroughAPI(projects: nil).map(\.key.name) == ["api-a", "api-b"], "nil is every project")
    }
}
