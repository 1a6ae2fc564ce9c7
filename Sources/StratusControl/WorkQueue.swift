import StratusModel

/// A keyed work queue: each resource is queued at most once, retried with capped, jittered backoff.
///
/// A key added while it is being worked on is marked dirty and queued again when the work ends,
/// so no change is lost and no resource is reconciled twice at the same time.
public actor WorkQueue {
    /// Every queued key and when it becomes ready.
    private var queued: [ResourceKey: ContinuousClock.Instant] = [:]
    /// Keys that became ready since the last `take`, which sorts them into `ready` by backend.
    private var arrived: [ResourceKey] = []
    /// Keys ready now per backend, oldest first: a saturated backend's backlog is never walked.
    private var ready: [String: ReadyQueue] = [:]
    /// Delayed keys by due time, earliest on top; an entry whose time no longer matches `queued`
    /// is stale (the key was taken or queued sooner) and dropped when it surfaces.
    private var delayed = DueHeap()
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
            arrived.append(key)  // if it was queued it was delayed, so not ready yet (its heap entry is now stale)
        } else {
            delayed.push(due, key)
        }
    }

    /// Takes ready keys, oldest first within each backend, while their backend has free slots, and
    /// marks them running.
    ///
    /// `slots` is the free capacity per backend name; `backends` names each kind's backend
    /// (kinds not listed share the backend `none`).
    public func take(slots: [String: Int], backends: [Kind: String]) -> [ResourceKey] {
        let now = clock.now
        while let (due, key) = delayed.popDue(by: now) {
            if queued[key] == due { arrived.append(key) }
        }
        for key in arrived { ready[backends[key.kind] ?? "none", default: ReadyQueue()].append(key) }
        arrived.removeAll(keepingCapacity: true)
        var taken: [ResourceKey] = []
        for (backend, free) in slots.sorted(by: { $0.key < $1.key }) where free > 0 {
            var count = 0
            while count < free, let key = ready[backend]?.popFirst() {
                guard let due = queued[key], due <= now else { continue }  // stale entry (taken or re-delayed)
                queued[key] = nil
                running.insert(key)
                taken.append(key)
                count += 1
            }
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

    /// How much is queued, how much runs, and how long the oldest ready key has waited.
    public func statistics() -> (queued: Int, running: Int, oldestReady: Duration?) {
        let now = clock.now
        var oldest: ContinuousClock.Instant?
        for due in queued.values where due <= now {
            if oldest.map({ due < $0 }) ?? true { oldest = due }
        }
        return (queued.count, running.count, oldest.map { now - $0 })
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

/// A FIFO of keys: an array and the index of its head, compacted when the consumed part is the larger half.
struct ReadyQueue {
    private var keys: [ResourceKey] = []
    private var head = 0

    mutating func append(_ key: ResourceKey) { keys.append(key) }

    mutating func popFirst() -> ResourceKey? {
        guard head < keys.count else { return nil }
        let key = keys[head]
        head += 1
        if head == keys.count {
            keys.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 1024 && head * 2 > keys.count {
            keys.removeFirst(head)
            head = 0
        }
        return key
    }
}

/// A binary min-heap of (due time, key).
struct DueHeap {
    private var items: [(due: ContinuousClock.Instant, key: ResourceKey)] = []

    mutating func push(_ due: ContinuousClock.Instant, _ key: ResourceKey) {
        items.append((due, key))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].due < items[parent].due else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns the earliest entry if it is due by `now`.
    mutating func popDue(by now: ContinuousClock.Instant) -> (ContinuousClock.Instant, ResourceKey)? {
        guard let top = items.first, top.due <= now else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < items.count && items[left].due < items[smallest].due { smallest = left }
                if right < items.count && items[right].due < items[smallest].due { smallest = right }
                if smallest == parent { break }
                items.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return (top.due, top.key)
    }
}
