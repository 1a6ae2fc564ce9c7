import Foundation
import StratusStore
import Synchronization

/// Records new objects in the store by group commit: PUTs that finish while a commit is
/// running wait for the next one, and one transaction (one WAL sync) records them all, each
/// still decided on its own (`Store.putObjects`). The commit runs on a thread of its own, not
/// on Swift's two cooperative threads, which would otherwise stall every request while SQLite
/// syncs.
final class ObjectCommitter: Sendable {
    typealias Outcome = (written: Bool, replaced: String?)

    private struct Waiting: Sendable {
        let object: ObjectRecord
        let condition: (@Sendable (String?) -> Bool)?
        let continuation: CheckedContinuation<Outcome, any Error>
    }

    private struct State {
        var queue: [Waiting] = []
        var running = false
    }

    private let store: Store
    private let state = Mutex(State())

    init(store: Store) { self.store = store }

    /// Records `object` as `Store.putObject` would.
    func put(_ object: ObjectRecord, condition: (@Sendable (String?) -> Bool)?) async throws -> Outcome {
        try await withCheckedThrowingContinuation { continuation in
            let start = state.withLock { state -> Bool in
                state.queue.append(Waiting(object: object, condition: condition, continuation: continuation))
                guard !state.running else { return false }
                state.running = true
                return true
            }
            if start { Thread.detachNewThread { self.drain() } }
        }
    }

    /// Commits batches until no PUT waits.
    private func drain() {
        while true {
            let batch = state.withLock { state -> [Waiting] in
                let taken = state.queue
                state.queue = []
                if taken.isEmpty { state.running = false }
                return taken
            }
            guard !batch.isEmpty else { return }
            do {
                let results = try store.putObjects(batch.map { ($0.object, $0.condition) })
                for (waiting, result) in zip(batch, results) { waiting.continuation.resume(with: result) }
            } catch {
                for waiting in batch { waiting.continuation.resume(throwing: error) }
            }
        }
    }
}
