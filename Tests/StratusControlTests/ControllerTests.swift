import Foundation
import GRDB
import StratusModel
import StratusStore
import Synchronization
import Testing

@testable import StratusControl

/// A reconciler for tests: records what it was asked to do, fails the first `failures` attempts.
final class RecordingReconciler: Reconciler {
    let name = "recording"
    let kinds: Set<Kind> = [.volume]
    let concurrency = 2
    private let state = Mutex<(reconciled: [String], finalized: [String], failuresLeft: Int, running: Int, maxRunning: Int)>(([], [], 0, 0, 0))

    init(failures: Int = 0) { state.withLock { $0.failuresLeft = failures } }

    var reconciled: [String] { state.withLock { $0.reconciled } }
    var finalized: [String] { state.withLock { $0.finalized } }
    var maxRunning: Int { state.withLock { $0.maxRunning } }

    func reconcile(_ resource: StoredResource) async -> ReconcileResult {
        let fail = state.withLock { state -> Bool in
            state.running += 1
            state.maxRunning = max(state.maxRunning, state.running)
            if state.failuresLeft > 0 {
                state.failuresLeft -= 1
                return true
            }
            state.reconciled.append(resource.metadata.name)
            return false
        }
        try? await Task.sleep(for: .milliseconds(20))
        state.withLock { $0.running -= 1 }
        if fail { return .failed(reason: .hypervisorUnreachable, message: "the backend is unreachable", retryable: true) }
        return .done(ResourceStatus(phase: "Available", conditions: [Condition(type: .ready, status: .true, reason: .applied, lastTransitionTime: "2026-01-01T00:00:00Z")]))
    }

    func finalize(_ resource: StoredResource) async -> ReconcileResult {
        state.withLock { $0.finalized.append(resource.metadata.name) }
        return .done(ResourceStatus())
    }
}

func volumes(_ names: [String]) throws -> [ManifestDocument] {
    var text = "apiVersion: stratus/v1\nkind: User\nmetadata: {name: alice}\nspec: {}\n---\napiVersion: stratus/v1\nkind: Project\nmetadata: {name: acme}\nspec: {manager: alice}\n"
    for name in names { text += "---\napiVersion: stratus/v1\nkind: Volume\nmetadata: {name: \(name), project: acme}\nspec: {sizeGB: 1}\n" }
    return try ManifestLoader.load([ManifestSource(name: "v.yaml", data: Data(text.utf8))])
}

/// Polls until a condition holds or a deadline passes.
func eventually(timeout: Duration = .seconds(60), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

@Suite struct ControllerTests {
    @Test("a new resource is reconciled, and its status records the generation it describes")
    func reconcilesNewResources() async throws {
        let store = try Store(writer: DatabaseQueue())
        let reconciler = RecordingReconciler()
        let controller = Controller(store: store, reconcilers: [reconciler, CatalogReconciler()], resyncInterval: .seconds(60), pollInterval: .milliseconds(10))
        let task = Task { try await controller.run() }
        defer { task.cancel() }
        try store.apply(try volumes(["a", "b", "c", "d", "e"]), options: ApplyOptions())
        let key = ResourceKey(kind: .volume, project: "acme", name: "c")
        #expect(try await eventually { try store.get(key)?.resource.status?.phase == "Available" })
        let status = try #require(try store.get(key)?.resource.status)
        #expect(status.observedGeneration == 1)
        #expect(status.condition(.synced)?.status == .true)
        #expect(try await eventually { try store.get(ResourceKey(kind: .instanceType, project: nil, name: "m1.tiny"))?.resource.status?.phase == "Ready" })
        #expect(try store.get(ResourceKey(kind: .project, project: nil, name: "acme"))?.resource.status?.condition(.synced)?.reason == .noReconciler)
        #expect(try await eventually { Set(reconciler.reconciled) == ["a", "b", "c", "d", "e"] })
        #expect(reconciler.maxRunning == 2)
    }

    @Test("failures are retried with backoff and reported in the Synced condition")
    func retriesFailures() async throws {
        let store = try Store(writer: DatabaseQueue())
        let reconciler = RecordingReconciler(failures: 2)
        let controller = Controller(store: store, reconcilers: [reconciler], pollInterval: .milliseconds(10), queue: WorkQueue(baseDelay: .milliseconds(50)))
        let task = Task { try await controller.run() }
        defer { task.cancel() }
        try store.apply(try volumes(["a"]), options: ApplyOptions())
        let key = ResourceKey(kind: .volume, project: "acme", name: "a")
        #expect(try await eventually { try store.get(key)?.resource.status?.phase == "Available" })
        let warnings = try store.events(for: key).filter { $0.type == "Warning" && $0.reason == "HypervisorUnreachable" }
        #expect(warnings.map(\.message) == ["the backend is unreachable"])  // two failures, one event
        #expect(reconciler.reconciled == ["a"])
    }

    @Test("a delete goes through the reconciler's teardown before the record is removed")
    func finalizesDeletes() async throws {
        let store = try Store(writer: DatabaseQueue())
        let reconciler = RecordingReconciler()
        let controller = Controller(store: store, reconcilers: [reconciler], pollInterval: .milliseconds(10))
        let task = Task { try await controller.run() }
        defer { task.cancel() }
        try store.apply(try volumes(["a", "b"]), options: ApplyOptions())
        let key = ResourceKey(kind: .volume, project: "acme", name: "a")
        #expect(try await eventually { try store.get(key)?.resource.status?.phase == "Available" })
        _ = try store.delete([key])
        #expect(try await eventually { try store.get(key) == nil })
        #expect(reconciler.finalized == ["a"])
    }

    @Test("after a restart the controller resumes from its saved cursor and resyncs everything")
    func restart() async throws {
        let store = try Store(writer: DatabaseQueue())
        try store.apply(try volumes(["a"]), options: ApplyOptions())
        let first = RecordingReconciler()
        let task = Task { try await Controller(store: store, reconcilers: [first], pollInterval: .milliseconds(10)).run() }
        #expect(try await eventually { first.reconciled == ["a"] })
        #expect(try await eventually { try store.cursor("controller") > 0 })  // the status event was followed and saved
        task.cancel()
        _ = await task.result
        let saved = try store.cursor("controller")
        let last = try store.lastEventSeq()
        #expect(saved > 0 && saved <= last)  // where the next run resumes
        try store.apply(try volumes(["a", "b"]), options: ApplyOptions())
        let second = RecordingReconciler()
        let again = Task { try await Controller(store: store, reconcilers: [second], pollInterval: .milliseconds(10)).run() }
        defer { again.cancel() }
        #expect(try await eventually { Set(second.reconciled) == ["a", "b"] })
    }
}

@Suite struct WorkQueueTests {
    @Test("a key is queued once however often it is added, and re-queued if added while running")
    func dedupe() async {
        let queue = WorkQueue()
        let key = ResourceKey(kind: .volume, project: "p", name: "v")
        await queue.add(key)
        await queue.add(key)
        #expect(await queue.take(slots: ["none": 10], backends: [:]) == [key])
        await queue.add(key)
        #expect(await queue.take(slots: ["none": 10], backends: [:]).isEmpty)
        await queue.finish(key, outcome: .success)
        #expect(await queue.take(slots: ["none": 10], backends: [:]) == [key])
    }

    @Test("backoff doubles, is jittered, and is capped")
    func backoff() async {
        let queue = WorkQueue(baseDelay: .milliseconds(100), maxDelay: .seconds(1))
        for attempt in 1...8 {
            let delay = await queue.backoff(attempts: attempt)
            let ceiling = min(Duration.milliseconds(100) * (1 << (attempt - 1)), .seconds(1))
            #expect(delay <= ceiling && delay >= ceiling / 2, "attempt \(attempt): \(delay)")
        }
    }

    @Test("per-backend slots limit how many keys are taken")
    func slots() async {
        let queue = WorkQueue()
        for index in 0..<5 { await queue.add(ResourceKey(kind: .volume, project: "p", name: "v\(index)")) }
        #expect(await queue.take(slots: ["storage": 2], backends: [.volume: "storage"]).count == 2)
        #expect(await queue.take(slots: ["storage": 0], backends: [.volume: "storage"]).isEmpty)
    }

    @Test("delayed keys come out when due, earliest first; a key queued sooner is taken once; skipped keys keep their place")
    func delayedOrder() async throws {
        let queue = WorkQueue()
        let key = { (name: String) in ResourceKey(kind: .volume, project: "p", name: name) }
        await queue.add(key("a"), after: .milliseconds(60))
        await queue.add(key("b"), after: .milliseconds(20))
        await queue.add(key("c"), after: .milliseconds(40))
        await queue.add(key("c"))  // sooner wins
        #expect(await queue.take(slots: ["none": 10], backends: [:]) == [key("c")])
        try await Task.sleep(for: .milliseconds(100))
        let network = ResourceKey(kind: .network, project: "p", name: "n")
        await queue.add(network)
        // Volumes have no free slot: the network is taken past them, and they keep their order.
        #expect(await queue.take(slots: ["storage": 0, "none": 5], backends: [.volume: "storage"]) == [network])
        #expect(await queue.take(slots: ["storage": 1], backends: [.volume: "storage"]) == [key("b")])
        #expect(await queue.take(slots: ["storage": 5], backends: [.volume: "storage"]) == [key("a")])
        #expect(await queue.take(slots: ["storage": 5], backends: [.volume: "storage"]).isEmpty, "c's delayed entry is stale")
    }
}
