import StratusModel

/// A keyed work queue: each resource is queued at most once, retried with capped, jittered backoff.
///
/// A key added while it is being worked on is marked dirty and queued again when the work ends,
/// so no change is lost and no resource is reconciled twice at the same time.
public actor WorkQueue {
    private var queued: [ResourceKey: ContinuousClock.Instant] = [:]
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
        let ready = clock.now.advanced(by: delay)
        if let existing = queued[key], existing <= ready { return }
        queued[key] = ready
    }

    /// Takes ready keys, earliest first, while their backend has free slots, and marks them running.
    ///
    /// `slots` is the free capacity per backend name; `backends` names each kind's backend
    /// (kinds not listed share the backend `none`).
    public func take(slots: [String: Int], backends: [Kind: String]) -> [ResourceKey] {
        let now = clock.now
        let ready = queued.filter { $0.value <= now }.sorted { $0.value < $1.value }.map(\.key)
        var free = slots
        var taken: [ResourceKey] = []
        for key in ready {
            let backend = backends[key.kind] ?? "none"
            guard free[backend, default: 0] > 0 else { continue }
            free[backend, default: 0] -= 1
            queued[key] = nil
            running.insert(key)
            taken.append(key)
        }
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

    /// How many keys are queued or running.
    public var depth: Int { queued.count + running.count }

    /// How work on a key ended.
    public enum Outcome: Sendable {
        case success
        case requeue(after: Duration)
        case retry
        case giveUp
    }
}
