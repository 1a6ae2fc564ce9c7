import Foundation
import Logging
import StratusCompute
import StratusMessaging
import StratusModel
import StratusNode
import Synchronization

/// The controller's side of the broker: `NodeTransport` over AMQP.
///
/// Calls are requests to the node's queue with `reply_to` and a correlation id, each with a
/// timeout and a per-message expiration, so a call nobody took in time is never acted on
/// later. Nodes are known from their heartbeats: one never heard from is `unreachable`, and
/// one silent for longer than `nodeTimeout` is `lost` (calls to it fail at once, without
/// waiting for a timeout, and the calls still queued for it are purged). Nodes the store knew
/// before this controller started (`expect`) are lost too when none of their heartbeats comes
/// within `nodeTimeout` of the start: a node that died while the controller was down.
public final class AMQPTransport: NodeTransport {
    public let url: AMQPURL
    public let nodeTimeout: Duration
    public let senders: NodeSenders
    let requester: AMQPRequester
    let consumer: AMQPConsumer
    let logger: Logger

    private struct Seen {
        /// Nil for a node expected from the store and not heard from since this controller started.
        var heartbeat: NodeHeartbeat?
        var at: ContinuousClock.Instant
        var wallClock: Date
        var lost = false
    }
    private struct State {
        var seen: [String: Seen] = [:]
        var eventSinks: [UUID: AsyncStream<NodeEvent>.Continuation] = [:]
        var changeSinks: [UUID: AsyncStream<String>.Continuation] = [:]
        var stopped = false
        /// Whether the controller's own consumer was disconnected at the last look.
        var deaf = false
    }
    private let state = Mutex(State())
    private let tasks = Mutex<[Task<Void, Never>]>([])

    /// - Parameters:
    ///   - nodeTimeout: the silence after which a node counts as lost (`--node-timeout`).
    ///   - senders: whose messages may speak for which node; by default the controller's own
    ///     user and `node-<name>`.
    public init(url: AMQPURL, nodeTimeout: Duration = .seconds(30), senders: NodeSenders? = nil, logger: Logger = Logger(label: "stratus.amqp")) {
        self.url = url
        self.nodeTimeout = nodeTimeout
        self.senders = senders ?? NodeSenders(shared: [url.user])
        self.logger = logger
        requester = AMQPRequester(url: url, logger: logger)
        consumer = AMQPConsumer(url: url, prefetch: 1000, logger: logger) { connection throws(AMQPError) in
            try connection.declareTopicExchange(NodeWire.exchange)
            let queue = try connection.declareQueue(NodeWire.controllerQueue, durable: true)
            try connection.bind(queue: queue, exchange: NodeWire.exchange, key: "heartbeat.#")
            try connection.bind(queue: queue, exchange: NodeWire.exchange, key: "event.#")
            return queue
        }
        let listener = Task { [self] in
            for await delivery in consumer.deliveries {
                consumer.ack(delivery)
                receive(delivery)
            }
        }
        let monitor = Task { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(250))
                markSilentNodesLost()
            }
        }
        tasks.withLock { $0 = [listener, monitor] }
    }

    /// Stops consuming and answering; pending calls fail.
    public func stop() {
        consumer.stop()
        requester.stop()
        for task in tasks.withLock({ $0 }) { task.cancel() }
        let sinks = state.withLock { state in
            state.stopped = true
            defer { state.eventSinks.removeAll(); state.changeSinks.removeAll() }
            return (Array(state.eventSinks.values), Array(state.changeSinks.values))
        }
        for sink in sinks.0 { sink.finish() }
        for sink in sinks.1 { sink.finish() }
    }

    // MARK: What nodes report

    private func receive(_ delivery: AMQPDelivery) {
        guard let node = NodeWire.node(ofKey: delivery.routingKey), NodeWire.validNodeName(node) else { return }
        guard senders.allows(delivery.userId, for: node) else {
            logger.warning("dropped a message for a node its sender may not speak for", metadata: [
                "stratus.node": "\(node)", "stratus.amqp.user": "\(delivery.userId ?? "none")", "stratus.amqp.key": "\(delivery.routingKey)",
            ])
            return
        }
        if delivery.routingKey.hasPrefix("heartbeat.") {
            guard let heartbeat = try? NodeWire.decode(NodeHeartbeat.self, delivery.body), heartbeat.node == node else {
                logger.warning("dropped a heartbeat this controller cannot read (another version of stratus?)", metadata: ["stratus.node": "\(node)"])
                return
            }
            let changed = state.withLock { state -> Bool in
                let previous = state.seen[node]
                state.seen[node] = Seen(heartbeat: heartbeat, at: .now, wallClock: Date())
                guard let previous, !previous.lost, let last = previous.heartbeat else { return true }
                return last.report != heartbeat.report || last.reportError != heartbeat.reportError
            }
            if changed {
                logger.info("node agent reporting", metadata: ["stratus.node": "\(node)", "stratus.version": "\(heartbeat.version)"])
                announce(node)
            }
        } else {
            guard let event = try? NodeWire.decode(NodeEvent.self, delivery.body), event.node == node else { return }
            for sink in state.withLock({ Array($0.eventSinks.values) }) { sink.yield(event) }
        }
    }

    private func markSilentNodesLost() {
        let now = ContinuousClock.now
        // Silence counts only while this controller hears the broker: when its own connection is
        // down every node is silent, and none of them failed. Once it hears again, each node's
        // silence starts from then.
        let listening = consumer.queue != nil
        let lost = state.withLock { state -> [String] in
            guard listening else {
                state.deaf = true
                return []
            }
            if state.deaf {
                state.deaf = false
                for node in state.seen.keys where !state.seen[node]!.lost { state.seen[node]!.at = now }
                return []
            }
            var lost: [String] = []
            for (node, seen) in state.seen where !seen.lost && now - seen.at > nodeTimeout {
                state.seen[node]!.lost = true
                lost.append(node)
            }
            return lost
        }
        for node in lost.sorted() {
            logger.warning("node agent silent; node lost", metadata: ["stratus.node": "\(node)", "stratus.timeout": "\(nodeTimeout)"])
            purgeCalls(of: node)
            announce(node)
        }
    }

    /// Drops the calls still waiting in a lost node's queue: their callers have been answered
    /// `lost`, and an agent that comes back must not act on them after its instances moved.
    /// (Calls its agent had already taken are its own to finish; the reclaim that follows its
    /// return removes what moved away.)
    private func purgeCalls(of node: String) {
        let url = url
        let logger = logger
        DispatchQueue.global().async {
            do {
                let connection = try AMQPConnection(url: url, heartbeat: 0)
                defer { connection.close() }
                let dropped = try connection.purge(queue: NodeWire.callQueue(node: node))
                if dropped > 0 { logger.info("dropped the calls queued for a lost node", metadata: ["stratus.node": "\(node)", "stratus.calls": "\(dropped)"]) }
            } catch {
                logger.debug("cannot purge a lost node's calls", metadata: ["stratus.node": "\(node)", "stratus.error": "\(error)"])
            }
        }
    }

    /// Nodes known before this controller started (the store's): each is waited for one node
    /// timeout from now and counted lost if it sends no heartbeat by then.
    public func expect(_ nodes: [String]) {
        let now = ContinuousClock.now
        state.withLock { state in
            for node in nodes where state.seen[node] == nil && NodeWire.validNodeName(node) {
                state.seen[node] = Seen(heartbeat: nil, at: now, wallClock: Date())
            }
        }
    }

    private func announce(_ node: String) {
        for sink in state.withLock({ Array($0.changeSinks.values) }) { sink.yield(node) }
    }

    /// The node's last heartbeat, if it is live; else the error a call to it gets.
    private func live(_ node: String) throws(NodeError) -> Seen {
        guard let seen = state.withLock({ $0.seen[node] }) else {
            throw NodeError(.unreachable, "placed on \(node), whose agent converges it; no agent of \(node) has reported to this controller through \(url) (start `stratus agent --node \(node)`)")
        }
        let silent = Int((ContinuousClock.now - seen.at).components.seconds)
        if seen.lost {
            let since = seen.heartbeat == nil ? "since this controller started \(silent) s ago" : "for \(silent) s"
            throw NodeError(.lost, "node \(node) is lost: its agent has sent no heartbeat \(since) (more than the \(nodeTimeout.components.seconds) s node timeout)")
        }
        if seen.heartbeat == nil {
            throw NodeError(.unreachable, "placed on \(node), whose agent has not reported since this controller started \(silent) s ago (it counts as lost after \(nodeTimeout.components.seconds) s)")
        }
        return seen
    }

    // MARK: NodeTransport

    /// The nodes whose agents are reporting.
    public var nodes: [String] { state.withLock { $0.seen.filter { !$0.value.lost && $0.value.heartbeat != nil }.keys.sorted() } }

    private func call(_ call: NodeCall, on node: String, timeout: Duration = .seconds(30)) async throws(NodeError) -> NodeAnswer {
        _ = try live(node)
        var answered: AMQPDelivery?
        for attempt in 1...3 {
            do {
                answered = try await requestWhileLive(call, on: node, timeout: timeout)
                break
            } catch let lost as NodeError {
                throw lost
            } catch {
                // The broker went away under the call: calls are level-triggered, so it is asked again once the requester is back.
                if attempt < 3, "\(error)".contains("lost the broker connection") { continue }
                throw NodeError(.unreachable, "\(node)'s agent did not answer: \(error)")
            }
        }
        guard let delivery = answered else { throw NodeError(.unreachable, "\(node)'s agent did not answer") }
        guard senders.allows(delivery.userId, for: node) else {
            throw NodeError(.unreachable, "the answer for \(node) came from broker user \(delivery.userId ?? "none"), which may not speak for it")
        }
        let answer: NodeAnswer
        do { answer = try NodeWire.decode(NodeAnswer.self, delivery.body) } catch { throw NodeError(.unreachable, "\(node)'s agent answered something this controller cannot read: \(error)") }
        if let error = answer.error { throw error }
        return answer
    }

    /// The request, given up as soon as the node is lost (checked every 250 ms): a call to an
    /// agent that stopped must not hold its caller (a resync, a reconcile) for the whole timeout.
    private func requestWhileLive(_ call: NodeCall, on node: String, timeout: Duration) async throws -> AMQPDelivery {
        let requester = self.requester
        let body = NodeWire.encode(call)
        return try await withThrowingTaskGroup(of: AMQPDelivery?.self) { group in
            group.addTask { try await requester.request(exchange: NodeWire.exchange, key: NodeWire.callKey(node: node), body: body, timeout: timeout) }
            group.addTask { [self] in
                while !Task.isCancelled {
                    try await Task.sleep(for: .milliseconds(250))
                    if state.withLock({ $0.seen[node]?.lost ?? false }) { return nil }
                }
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let delivery = first else {
                _ = try live(node)  // throws the lost node's error
                throw NodeError(.lost, "node \(node) was lost during the call")
            }
            return delivery
        }
    }

    public func converge(_ intent: InstanceIntent, on node: String) async throws(NodeError) -> InstanceReport {
        // The first converge of an image fetches it into the node's cache: it may take a while.
        let answer = try await call(.converge(intent), on: node, timeout: .seconds(120))
        guard let report = answer.report, report.id == intent.id, report.node == node else {
            throw NodeError(.unreachable, "\(node)'s agent answered the converge of \(intent.id) without its report")
        }
        return report
    }

    public func remove(instance id: String, on node: String) async throws(NodeError) { _ = try await call(.remove(instance: id), on: node) }

    public func domains(on node: String) async throws(NodeError) -> [DomainInfo] { try await call(.domains, on: node).domains ?? [] }

    public func domainStates(on node: String) async throws(NodeError) -> [String: DomainState] { try await call(.domainStates, on: node).states ?? [:] }

    public func domain(named name: String, on node: String) async throws(NodeError) -> DomainInfo? { try await call(.domain(name: name), on: node).domain }

    public func reboot(instance id: String, on node: String) async throws(NodeError) { _ = try await call(.reboot(instance: id), on: node) }

    public func consoleLog(instance id: String, on node: String) async throws(NodeError) -> String? { try await call(.console(instance: id), on: node).console }

    public func report(of node: String) async throws(NodeError) -> NodeReport {
        let seen = try live(node)
        guard let heartbeat = seen.heartbeat else {
            throw NodeError(.unreachable, "no heartbeat from \(node)'s agent since this controller started; it counts as lost after \(nodeTimeout.components.seconds) s")
        }
        if let error = heartbeat.reportError { throw error }
        guard var report = heartbeat.report else { throw NodeError(.hypervisor, "\(node)'s agent reports no capacity") }
        report.lastHeartbeat = Timestamp.string(seen.wallClock)
        report.version = heartbeat.version
        report.roles = heartbeat.roles
        report.zone = heartbeat.zone
        return report
    }

    public func events() -> AsyncStream<NodeEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: NodeEvent.self, bufferingPolicy: .bufferingNewest(10_000))
        let id = UUID()
        let stopped = state.withLock { state -> Bool in
            if !state.stopped { state.eventSinks[id] = continuation }
            return state.stopped
        }
        if stopped { continuation.finish() }
        continuation.onTermination = { [weak self] _ in _ = self?.state.withLock { $0.eventSinks.removeValue(forKey: id) } }
        return stream
    }

    public func nodeChanges() -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(10_000))
        let id = UUID()
        let stopped = state.withLock { state -> Bool in
            if !state.stopped { state.changeSinks[id] = continuation }
            return state.stopped
        }
        if stopped { continuation.finish() }
        continuation.onTermination = { [weak self] _ in _ = self?.state.withLock { $0.changeSinks.removeValue(forKey: id) } }
        return stream
    }
}
