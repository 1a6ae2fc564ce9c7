import Foundation
import Synchronization

/// Instances terminated through the API, kept visible as `terminated` for a while (as EC2 does)
/// after their resource is gone. In memory: a restart forgets them.
///
/// A busy project terminates thousands an hour, and every DescribeInstances looks here, so an
/// entry's XML is rendered once when it is added, and expiry walks only the oldest entries. A lock
/// rather than an actor: a request that looks here does not queue behind a hundred others to do so.
final class TerminatedInstances: Sendable {
    struct Entry {
        let project: String
        let reservationId: String
        /// The instance's `<item>` content, already rendered.
        let item: [XMLNode]
        let filterValues: [String: [String]]
        let at: ContinuousClock.Instant
    }

    private struct State {
        var entries: [String: Entry] = [:]
        /// Ids in the order they were added, with when: expiry pops from `oldest` on.
        var added: [(id: String, at: ContinuousClock.Instant)] = []
        var oldest = 0
    }

    private let retention: Duration
    private let state = Mutex(State())

    init(retention: Duration) { self.retention = retention }

    func add(_ id: String, _ entry: Entry) {
        var rendered = ""
        for node in entry.item { node.render(into: &rendered) }
        let stored = Entry(project: entry.project, reservationId: entry.reservationId, item: [.raw(rendered)], filterValues: entry.filterValues, at: entry.at)
        state.withLock { state in
            state.entries[id] = stored
            state.added.append((id, entry.at))
        }
    }

    /// The entries still within the retention (all of them, or those of `ids`).
    func entries(_ ids: [String] = []) -> [(id: String, entry: Entry)] {
        state.withLock { state in
            Self.expire(&state, retention: retention)
            if ids.isEmpty { return state.entries.map { ($0.key, $0.value) } }
            return ids.compactMap { id in state.entries[id].map { (id, $0) } }
        }
    }

    private static func expire(_ state: inout State, retention: Duration) {
        let now = ContinuousClock.now
        while state.oldest < state.added.count, now - state.added[state.oldest].at >= retention {
            let (id, at) = state.added[state.oldest]
            // A later add of the same id keeps its own, newer entry.
            if state.entries[id]?.at == at { state.entries[id] = nil }
            state.oldest += 1
        }
        if state.oldest > 1024, state.oldest * 2 > state.added.count {
            state.added.removeFirst(state.oldest)
            state.oldest = 0
        }
    }
}
