import StratusModel

/// A keyed work queue: each resource is queued at most once, retried with capped, jittered backoff.
///
/// A key added while it is being worked on is marked dirty and queued again when the work ends,
/// so no change is lost and no resource is reconciled twice at the same time.
public actor WorkQueue {
    /// Every queued key and when it becomes ready.
    private var queued: [ResourceKey: ContinuousClock.Instant] = [:]
    /// Keys ready now, oldest first (`head` is the next to hand out); delayed keys join when due.
    private var ready: [ResourceKey] = []
    private var head = 0
    private var delayed: Set<ResourceKey> = []
    private var running: Set<ResourceKey> = []
    private var dirty: Set<ResourceKey> = []
    private var failures: [ResourceKey: Int] = [:]
    private let clock = ContinuousClock()
    private let baseDelay: Duration
    private let maxDelay: Duration

    public init(baseDelay: Duration = .milliseconds(200), maxDelay: Duration = .seconds(60)) {
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// Queues a key to run after a delay; an earlier ready time wins over a later one.
    public func add(_ key: ResourceKey, after delay: Duration = .zero) {
        if running.contains(key) {
            dirty.insert(key)
            return
        }
        let now = clock.now
        let due = now.advanced(by: delay)
        if let existing = queued[key], existing <= due { return }
        queued[key] = due
        if due <= now {
            delayed.remove(key)
            ready.append(key)  // if it was queued it was delayed, so not in `ready` yet (stale entries are skipped in take)
        } else {
            delayed.insert(key)
        }
    }

    /// Takes ready keys, earliest first, while their backend has free slots, and marks them running.
    ///
    /// `slots` is the free capacity per backend name; `backends` names each kind's backend
    /// (kinds not listed share the backend `none`).
    public func take(slots: [String: Int], backends: [Kind: String]) -> [ResourceKey] {
        let now = clock.now
        if !delayed.isEmpty {
            let due = delayed.filter { queued[$0].map { $0 <= now } ?? true }.sorted { queued[$0]! < queued[$1]! }
            for key in due {
                delayed.remove(key)
                ready.append(key)
            }
        }
        var free = slots
        var remaining = free.values.reduce(0) { $0 + max($1, 0) }
        var taken: [ResourceKey] = []
        var kept: [ResourceKey] = []
        var index = head
        while index < ready.count && remaining > 0 {
            let key = ready[index]
            index += 1
            guard let due = queued[key], due <= now else { continue }  // stale entry (taken or re-delayed)
            let backend = backends[key.kind] ?? "none"
            guard free[backend, default: 0] > 0 else {
                kept.append(key)
                continue
            }
            free[backend, default: 0] -= 1
            remaining -= 1
            queued[key] = nil
            running.insert(key)
            taken.append(key)
        }
        // Keys skipped for want of a slot go back in front, in order; compact now and then.
        ready = kept + ready[index...]
        head = 0
        return taken
    }

    /// Ends work on a key: success clears its backoff; failure queues it after the next backoff step.
    public func finish(_ key: ResourceKey, outcome: Outcome) {
        running.remove(key)
        switch outcome {
        case .success:
            failures[key] = nil
        case .requeue(let delay):
            failures[key] = nil
            add(key, after: delay)
        case .retry:
            let attempts = (failures[key] ?? 0) + 1
            failures[key] = attempts
            add(key, after: backoff(attempts: attempts))
        case .giveUp:
            failures[key] = nil
        }
        if dirty.remove(key) != nil { add(key) }
    }

    /// The delay before retry number `attempts`: doubling from the base, capped, with up to 50% jitter off.
    public func backoff(attempts: Int) -> Duration {
        let exponent = min(attempts - 1, 30)
        let raw = baseDelay * (1 << exponent)
        let capped = raw > maxDelay ? maxDelay : raw
        return capped * Double.random(in: 0.5...1.0)
    }

    /// How work on a key ended.
    public enum Outcome: Sendable {
        case success
        case requeue(after: Duration)
        case retry
        case giveUp
    }
}
