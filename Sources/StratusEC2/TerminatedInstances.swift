import Foundation

/// Instances terminated through the API, kept visible as `terminated` for a while (as EC2 does)
/// after their resource is gone. In memory: a restart forgets them.
actor TerminatedInstances {
    struct Entry {
        let project: String
        let reservationId: String
        let item: [XMLNode]
        let filterValues: [String: [String]]
        let at: ContinuousClock.Instant
    }

    private let retention: Duration
    private var entries: [String: Entry] = [:]

    init(retention: Duration) { self.retention = retention }

    func add(_ id: String, _ entry: Entry) { entries[id] = entry }

    /// The entries still within the retention, oldest evicted first.
    func all() -> [String: Entry] {
        let now = ContinuousClock.now
        entries = entries.filter { now - $0.value.at < retention }
        return entries
    }
}
