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
