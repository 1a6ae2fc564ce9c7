import Foundation
import Logging
import ServiceLifecycle
import StratusModel
import StratusStore
import StratusTelemetry
import Synchronization

/// The controller loop: follows the store's change feed, resyncs periodically, and hands each
/// resource to the reconciler of its kind through a keyed work queue.
///
/// It is level-triggered: every start begins with a full resync, so a change missed while it
/// was down is still converged, and reconciling the same resource twice is harmless. Between
/// full resyncs (every `fullResyncInterval`), each `resyncInterval` queues only what a
/// reconciler's bulk comparison finds unconverged (`Reconciler.bulkResync`): with 10,000
/// running instances a resync is one listing of libvirt's domain states and one query, not
/// 10,000 reconciles.
public actor Controller: Service {
    private let store: Store
    private let reconcilers: [Kind: any Reconciler]
    private let logger: Logger
    private let queue: WorkQueue
    private let resyncInterval: Duration
    private let fullResyncInterval: Duration
    private let pollInterval: Duration
    private var inFlight: [String: Int] = [:]
    private let wakeup = Wakeup()
    private var cursor: Int64 = 0
    /// When the cursor was last saved: at most once a second, since a restart that re-reads a
    /// second of events only reconciles a few resources again.
    private var cursorSavedAt: ContinuousClock.Instant?
    static let cursorName = "controller"
    /// Where reconciles, the queue and drift are counted; nil counts nothing.
    private let telemetry: Telemetry?
    /// The API request behind the latest change of each queued resource (from its event), so
    /// the reconcile that converges it logs and records the same id.
    private let requestIds = Mutex<[ResourceKey: String]>([:])

    public init(
        store: Store,
        reconcilers: [any Reconciler],
        logger: Logger = Logger(label: "stratus.controller"),
        resyncInterval: Duration = .seconds(30),
        fullResyncInterval: Duration = .seconds(600),
        pollInterval: Duration = .milliseconds(50),
        queue: WorkQueue = WorkQueue(),
        telemetry: Telemetry? = nil
    ) {
        self.telemetry = telemetry
        self.store = store
        var byKind: [Kind: any Reconciler] = [:]
        for reconciler in reconcilers { for kind in reconciler.kinds { byKind[kind] = reconciler } }
        self.reconcilers = byKind
        self.logger = logger
        self.resyncInterval = resyncInterval
        self.fullResyncInterval = fullResyncInterval
        self.pollInterval = pollInterval
        self.queue = queue
        if let telemetry {
            telemetry.onScrape { [queue] in
                let stats = await queue.statistics()
                telemetry.set(.queueDepth, [], Double(stats.queued))
                telemetry.set(.queueInFlight, [], Double(stats.running))
                telemetry.set(.queueOldest, [], stats.oldestReady.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 } ?? 0)
            }
        }
    }

    /// The reconcilers whose `watch` reports changes of the world (a domain stopped by hand, an
    /// LDAP entry deleted), not of the store: what they enqueue is drift.
    static let driftWatchers: Set<String> = ["compute", "identity", "network", "volume"]

    /// Runs until the task is cancelled or a graceful shutdown is requested, on two threads of its
    /// own (a `ThreadPoolExecutor`), reconciles included.
    public func run() async throws {
        let executor = ThreadPoolExecutor(name: "stratus.controller", threads: 2)
        defer { executor.stop() }
        try await withTaskExecutorPreference(executor) { try await loop() }
    }

    private func loop() async throws {
        // Resume where the last run stopped; on a first start the resync below covers everything.
        let saved = try store.cursor(Self.cursorName)
        cursor = saved > 0 ? saved : try store.lastEventSeq()
        try await resync()
        var lastResync = ContinuousClock.now
        var lastFullResync = lastResync
        await withDiscardingTaskGroup { group in
            var watched = Set<String>()
            for reconciler in reconcilers.values where watched.insert(reconciler.name).inserted {
                let queue = self.queue
                let wakeup = self.wakeup
                let telemetry = Self.driftWatchers.contains(reconciler.name) ? self.telemetry : nil
                group.addTask {
                    await reconciler.watch { key in
                        telemetry?.count(.drift, [("kind", key.kind.rawValue), ("source", "watch")])
                        await queue.add(key)
                        await wakeup.signal()
                    }
                }
            }
            var lastFollow: ContinuousClock.Instant?
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                do {
                    // Every finished reconcile wakes the loop (hundreds a second under load); the
                    // feed is read at most every `feedInterval`, and at the latest after `pollInterval`.
                    if lastFollow.map({ ContinuousClock.now - $0 >= Self.feedInterval }) ?? true {
                        try await follow()
                        lastFollow = .now
                    }
                    if ContinuousClock.now - lastResync >= resyncInterval {
                        let full = ContinuousClock.now - lastFullResync >= fullResyncInterval
                        try await resync(full: full)
                        lastResync = .now
                        if full { lastFullResync = lastResync }
                    }
                } catch {
                    logger.error("reading the change feed failed; retrying", metadata: ["stratus.error": "\(error)"])
                }
                let ready = await queue.take(slots: freeSlots(), backends: reconcilers.mapValues(\.name))
                for key in ready {
                    inFlight[backend(of: key), default: 0] += 1
                    group.addTask { await self.process(key) }
                }
                // Sleep until a reconcile finishes (a slot frees up) or the poll interval passes.
                await wakeup.wait(timeout: pollInterval)
            }
            group.cancelAll()
        }
        try? store.saveCursor(Self.cursorName, cursor)
    }

    /// Full: queues every resource and lets each reconciler remove what it owns that nothing
    /// wants. Otherwise: each reconciler resyncs in bulk and the controller queues what it
    /// returns (one that cannot gets the full treatment); kinds without a reconciler have
    /// nothing to converge.
    public func resync(full: Bool = true) async throws {
        let started = ContinuousClock.now
        var resources = 0
        var queued = 0
        defer {
            logger.debug("resynced", metadata: [
                "stratus.full": "\(full)", "stratus.resources": "\(resources)", "stratus.queued": "\(queued)",
                "stratus.took": "\(ContinuousClock.now - started)",
            ])
        }
        var all: [StoredResource]?
        if full {
            all = try store.list()
            resources = all?.count ?? 0
            for resource in all ?? [] { await queue.add(resource.key) }
            queued = resources
        }
        var seen = Set<String>()
        for reconciler in reconcilers.values where seen.insert(reconciler.name).inserted {
            if !full, let keys = await reconciler.bulkResync() {
                for key in keys {
                    telemetry?.count(.drift, [("kind", key.kind.rawValue), ("source", "resync")])
                    await queue.add(key)
                }
                queued += keys.count
                continue
            }
            let wanted = try all?.filter { reconciler.kinds.contains($0.key.kind) } ?? reconciler.kinds.flatMap { try store.list(kind: $0) }
            if !full {
                for resource in wanted { await queue.add(resource.key) }
                resources += wanted.count
                queued += wanted.count
            }
            for removed in await reconciler.sweep(wanted) {
                logger.warning("removed an orphan", metadata: ["stratus.backend": "\(reconciler.name)", "stratus.orphan": "\(removed)"])
            }
        }
    }

    /// The shortest time between two reads of the change feed.
    static let feedInterval = Duration.milliseconds(10)

    /// Queues the resources named by new events in the feed.
    private func follow() async throws {
        while true {
            let events = try store.feed(after: cursor, limit: 1000)
            guard let last = events.last else { return }
            for event in events where StoredEvent.desiredStateReasons.contains(event.reason) {
                guard let key = event.key else { continue }
                if let id = event.requestId { requestIds.withLock { $0[key] = id } }
                await queue.add(key)
            }
            cursor = last.seq
            if cursorSavedAt.map({ ContinuousClock.now - $0 >= .seconds(1) }) ?? true {
                try store.saveCursor(Self.cursorName, cursor)
                cursorSavedAt = .now
            }
        }
    }

    private func backend(of key: ResourceKey) -> String { reconcilers[key.kind]?.name ?? "none" }

    /// Free concurrency per backend; kinds without a reconciler share `none` (8 at once).
    private func freeSlots() -> [String: Int] {
        var slots = ["none": 8 - inFlight["none", default: 0]]
        for reconciler in reconcilers.values { slots[reconciler.name] = reconciler.concurrency - inFlight[reconciler.name, default: 0] }
        return slots
    }

    /// Reconciles or finalizes one resource and records the outcome.
    private func process(_ key: ResourceKey) async {
        let outcome: WorkQueue.Outcome
        let requestId = requestIds.withLock { $0.removeValue(forKey: key) }
        let started = ContinuousClock.now
        do {
            outcome = try await RequestID.$current.withValue(requestId) { try await converge(key) }
        } catch {
            RequestID.$current.withValue(requestId) {
                logger.error("reconcile failed", metadata: ["stratus.resource": "\(key)", "stratus.error": "\(error)"])
            }
            telemetry?.count(.reconciles, [("kind", key.kind.rawValue), ("result", "error")])
            outcome = .retry
        }
        if let telemetry {
            telemetry.time(.reconcileDuration, [("kind", key.kind.rawValue)], ContinuousClock.now - started)
            if case .retry = outcome { telemetry.count(.queueRetries) }
        }
        if let requestId {
            // The reconcile of an API change: one line, with the request's id, to follow it by.
            logger.info("reconciled", metadata: ["stratus.resource": "\(key)", "stratus.requestId": "\(requestId)", "stratus.outcome": "\(outcome)", "stratus.took": "\(ContinuousClock.now - started)"])
        }
        inFlight[backend(of: key), default: 1] -= 1
        await queue.finish(key, outcome: outcome)
        await wakeup.signal()
    }

    /// Reconciles one resource now, outside the loop, and records its status as the loop would.
    ///
    /// For what must be known before the loop starts: `stratus serve` records this node's
    /// capacity this way before any instance is placed, so the first reconcile of an instance
    /// never finds the node's capacity unreported.
    public nonisolated func reconcileNow(_ key: ResourceKey) async throws {
        _ = try await converge(key)
    }

    /// Runs off the actor: reconciles of different resources proceed in parallel; only the
    /// bookkeeping in `process` is serialized.
    private nonisolated func converge(_ key: ResourceKey) async throws -> WorkQueue.Outcome {
        guard let resource = try store.get(key) else { return .success }
        guard let reconciler = reconcilers[key.kind] else {
            // Nothing outside the store exists for a kind no reconciler handles, so a delete is complete at once.
            if resource.isTerminating {
                try store.finalizeDeletion(key)
            } else if resource.resource.status?.condition(.synced)?.reason != .noReconciler {
                var status = resource.resource.status ?? ResourceStatus(phase: "Pending")
                status.setCondition(Condition(type: .synced, status: .unknown, reason: .noReconciler, message: "no reconciler converges \(key.kind.rawValue) in this build yet", lastTransitionTime: Timestamp.string(Date())))
                try store.updateStatus(key, status)
            }
            return .success
        }
        if resource.isTerminating {
            let result = await reconciler.finalize(resource)
            telemetry?.count(.reconciles, [("kind", key.kind.rawValue), ("result", result.label)])
            switch result {
            case .done:
                try store.finalizeDeletion(key)
                logger.info("deleted", metadata: ["stratus.resource": "\(key)"])
                return .success
            case .requeue(_, let after):
                return .requeue(after: after)
            case .failed(let reason, let message, let retryable):
                try record(resource, synced: false, reason: reason, message: message, status: nil)
                return retryable ? .retry : .giveUp
            }
        }
        let result = await reconciler.reconcile(resource)
        telemetry?.count(.reconciles, [("kind", key.kind.rawValue), ("result", result.label)])
        switch result {
        case .done(let status):
            let own = Self.ownVerdict(status)
            try record(resource, synced: own == nil, reason: own?.reason ?? .reconciled, message: own?.message, status: status)
            return .success
        case .requeue(let status, let after):
            let own = Self.ownVerdict(status)
            try record(resource, synced: own == nil, reason: own?.reason ?? .progressing, message: own?.message, status: status)
            return .requeue(after: after)
        case .failed(let reason, let message, let retryable):
            try record(resource, synced: false, reason: reason, message: message, status: nil)
            return retryable ? .retry : .giveUp
        }
    }

    /// A `Synced=False` a reconciler reports itself while converging, with one of the reasons only
    /// a reconciler gives (a GitSync whose commit did not apply or whose set drifted); any other
    /// `Synced` in a returned status is the controller's own from before and is written over.
    static func ownVerdict(_ status: ResourceStatus) -> Condition? {
        guard let synced = status.condition(.synced), synced.status == .false, reconcilerVerdicts.contains(synced.reason) else { return nil }
        return synced
    }

    static let reconcilerVerdicts: Set<ConditionReason> = [.fetchFailed, .syncFailed, .outOfSync]

    /// Writes the status with `observedGeneration` and the `Synced` condition.
    private nonisolated func record(_ resource: StoredResource, synced: Bool, reason: ConditionReason, message: String?, status: ResourceStatus?) throws {
        var next = status ?? resource.resource.status ?? ResourceStatus(phase: "Pending")
        let previous = resource.resource.status?.condition(.synced)
        if status != nil { next.observedGeneration = resource.generation }
        if !synced {
            // A failure to converge means the resource is not ready, for the same reason.
            next.setCondition(Condition(type: .ready, status: .false, reason: reason, message: message, lastTransitionTime: Timestamp.string(Date())))
        }
        next.setCondition(Condition(type: .synced, status: ConditionStatus(synced), reason: reason, message: message, lastTransitionTime: Timestamp.string(Date())))
        if next != resource.resource.status { try store.updateStatus(resource.key, next, previousPhase: .some(resource.resource.status?.phase)) }
        // One Warning per distinct failure, not one per retry.
        if !synced && (previous?.reason != reason || previous?.message != message) {
            try store.recordEvent(resource.key, type: "Warning", reason: reason.rawValue, message: message ?? reason.rawValue)
            logger.warning("reconcile failed", metadata: ["stratus.resource": "\(resource.key)", "stratus.reason": "\(reason.rawValue)", "stratus.message": "\(message ?? "")"])
        }
    }
}
