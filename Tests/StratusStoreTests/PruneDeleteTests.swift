import Foundation
import StratusModel
import Testing

@testable import StratusStore

@Suite struct PruneDeleteTests {
    @Test("prune deletes only members of the named set that the files dropped")
    func pruneOwnSetOnly() throws {
        let store = try makeStore()
        try store.apply(try documents(acme(instances: 4)), options: ApplyOptions(applySet: "demo"))
        let foreign = "apiVersion: stratus/v1\nkind: Volume\nmetadata: {name: scratch, project: acme}\nspec: {sizeGB: 1}\n"
        try store.apply(try documents(foreign), options: ApplyOptions(applySet: "other"))
        let plan = try store.apply(try documents(acme(instances: 3)), options: ApplyOptions(applySet: "demo", prune: true))
        #expect(plan.changes.filter { $0.action == .delete }.map(\.key.name) == ["web-3"])
        #expect(try store.get(ResourceKey(kind: .instance, project: "acme", name: "web-3"))?.displayPhase == "Terminating")
        #expect(try store.get(ResourceKey(kind: .volume, project: "acme", name: "scratch"))?.isTerminating == false)
        #expect(try store.list(kind: .instanceType).allSatisfy { !$0.isTerminating })
    }

    @Test("prune refuses more than 10 deletions, or more than half the set, without allowMassDelete")
    func budget() throws {
        let store = try makeStore()
        try store.apply(try documents(acme(instances: 30)), options: ApplyOptions(applySet: "big"))
        let error = try #require(throws: StoreError.self) { try store.apply(try documents(acme(instances: 19)), options: ApplyOptions(applySet: "big", prune: true)) }
        #expect(error.isMassDelete)
        #expect(try store.list(kind: .instance).allSatisfy { !$0.isTerminating })

        try store.apply(try documents(acme(instances: 4)), options: ApplyOptions(applySet: "small"))
        let half = try #require(throws: StoreError.self) { try store.apply(try documents(acme(instances: 0)), options: ApplyOptions(applySet: "small", prune: true)) }
        #expect(half.isMassDelete)

        let plan = try store.apply(try documents(acme(instances: 19)), options: ApplyOptions(applySet: "big", prune: true, allowMassDelete: true))
        #expect(plan.count(.delete) == 11)
    }

    @Test("the stratus/protect annotation blocks prune and delete until it is removed")
    func protect() throws {
        let store = try makeStore()
        let protected = acme(instances: 2).replacingOccurrences(of: "metadata: {name: web-1, project: acme, labels: {}}", with: "metadata: {name: web-1, project: acme, annotations: {stratus/protect: \"true\"}}")
        try store.apply(try documents(protected), options: ApplyOptions(applySet: "p"))
        let key = ResourceKey(kind: .instance, project: "acme", name: "web-1")
        let pruneError = try #require(throws: StoreError.self) { try store.apply(try documents(acme(instances: 1)), options: ApplyOptions(applySet: "p", prune: true, allowMassDelete: true)) }
        #expect(pruneError.isProtected)
        let deleteError = try #require(throws: StoreError.self) { try store.delete([ResourceKey(kind: .instance, project: "acme", name: "web-0"), key]) }
        #expect(deleteError.isProtected)
        #expect(try store.get(ResourceKey(kind: .instance, project: "acme", name: "web-0"))?.isTerminating == false)
        try store.apply(try documents(acme(instances: 2)), options: ApplyOptions(applySet: "p"))
        let outcomes = try store.delete([key])
        #expect(outcomes.map(\.1) == [.markedForDeletion])
    }

    @Test("volumes attached with deleteOnTermination are deleted with their instance (delete and prune), unless protected or declared by the same apply")
    func deleteOnTermination() throws {
        let store = try makeStore()
        try store.apply(try documents(acme(instances: 3)), options: ApplyOptions(applySet: "demo"))
        func volume(_ name: String, on instance: String, deleteOnTermination: Bool?, annotations: String = "") -> String {
            let flag = deleteOnTermination.map { ", deleteOnTermination: \($0)" } ?? ""
            return "apiVersion: stratus/v1\nkind: Volume\nmetadata: {name: \(name), project: acme\(annotations)}\nspec: {sizeGB: 1, attachment: {instance: \(instance)\(flag)}}\n"
        }
        let volumes = [
            volume("data-0", on: "web-0", deleteOnTermination: true), volume("data-1", on: "web-0", deleteOnTermination: false),
            volume("data-2", on: "web-0", deleteOnTermination: nil), volume("data-3", on: "web-0", deleteOnTermination: true, annotations: ", annotations: {stratus/protect: \"true\"}"),
            volume("data-4", on: "web-1", deleteOnTermination: true), volume("data-5", on: "web-2", deleteOnTermination: true),
        ].joined(separator: "---\n")
        try store.apply(try documents(volumes), options: ApplyOptions(applySet: "vols"))
        func terminating(_ name: String) throws -> Bool { try store.get(ResourceKey(kind: .volume, project: "acme", name: name))?.isTerminating == true }

        let outcomes = try store.delete([ResourceKey(kind: .instance, project: "acme", name: "web-0")], reason: "test")
        #expect(Set(outcomes.map(\.0.name)) == ["web-0", "data-0"] && outcomes.allSatisfy { $0.1 == .markedForDeletion }, "\(outcomes)")
        #expect(try terminating("data-0") && !terminating("data-1") && !terminating("data-2") && !terminating("data-3") && !terminating("data-4"))
        let events = try store.events(for: ResourceKey(kind: .volume, project: "acme", name: "data-0"))
        #expect(events.contains { $0.reason == "Deleting" && $0.message.contains("deleteOnTermination") }, "\(events.map(\.message))")

        // Pruned: web-1 leaves the set "demo", and data-4 goes with it.
        try store.apply(try documents(acme(instances: 3).replacingOccurrences(of: "name: web-1,", with: "name: web-9,")), options: ApplyOptions(applySet: "demo", prune: true, allowMassDelete: true))
        #expect(try store.get(ResourceKey(kind: .instance, project: "acme", name: "web-1"))?.isTerminating == true)
        #expect(try terminating("data-4"))

        // The same apply declares the volume while it prunes the instance: the volume stays.
        let web7 = "apiVersion: stratus/v1\nkind: Instance\nmetadata: {name: web-7, project: acme}\nspec: {image: debian, instanceType: m1.small}\n"
        try store.apply(try documents(web7 + "---\n" + volume("data-7", on: "web-7", deleteOnTermination: true)), options: ApplyOptions(applySet: "mixed"))
        try store.apply(try documents(volume("data-7", on: "web-7", deleteOnTermination: true)), options: ApplyOptions(applySet: "mixed", prune: true, allowMassDelete: true))
        #expect(try store.get(ResourceKey(kind: .instance, project: "acme", name: "web-7"))?.isTerminating == true)
        #expect(!(try terminating("data-7")))
    }

    @Test("delete leaves a tombstone shown as Terminating until the controller finalizes it")
    func tombstone() throws {
        let store = try makeStore()
        try store.apply(try documents(acme(instances: 1)), options: ApplyOptions())
        let key = ResourceKey(kind: .instance, project: "acme", name: "web-0")
        #expect(try store.delete([key]).map(\.1) == [.markedForDeletion])
        #expect(try store.delete([key]).map(\.1) == [.alreadyTerminating])
        #expect(try store.get(key)?.displayPhase == "Terminating")
        #expect(try store.finalizeDeletion(key))
        #expect(try store.get(key) == nil)
        #expect(try store.events(for: key).map(\.reason) == ["Created", "Deleting", "Deleted"])
        #expect(try store.delete([key]).map(\.1) == [.notFound])
    }

    @Test("re-applying a resource that is being deleted cancels the deletion")
    func reapplyCancelsDeletion() throws {
        let store = try makeStore()
        try store.apply(try documents(acme(instances: 1)), options: ApplyOptions())
        let key = ResourceKey(kind: .instance, project: "acme", name: "web-0")
        _ = try store.delete([key])
        let plan = try store.apply(try documents(acme(instances: 1)), options: ApplyOptions())
        #expect(plan.changes.first { $0.key == key }?.notes == ["deletion cancelled"])
        #expect(try store.get(key)?.isTerminating == false)
    }
}
