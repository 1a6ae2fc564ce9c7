import Foundation
import Logging
import ServiceLifecycle
import StratusCompute
import StratusMessaging
import StratusModel
import StratusNode
import Synchronization

/// A node agent's side of the broker: answers the controller's calls to each of its nodes with
/// the same `NodeAgent` the single-process mode calls directly, sends a heartbeat per node and
/// forwards what the nodes' hypervisors see happen.
///
/// One process may host many nodes (hollow nodes, for scale tests); each has its own queue.
public struct AgentService: Service {
    public let url: AMQPURL
    public let agents: [NodeAgent]
    public let roles: [String]
    public let version: String
    public let heartbeatInterval: Duration
    /// Calls of one node worked on at once (and the queue's prefetch).
    public let concurrency: Int
    /// The broker users whose calls are answered (the controller's, and the agent's own when
    /// it shares the controller's account): a call another agent sends is dropped.
    public let callers: Set<String>
    let logger: Logger
    /// Calls answered since start, logged at the stop.
    let answered = Counter()

    public init(url: AMQPURL, agents: [NodeAgent], roles: [String] = ["compute"], version: String, heartbeatInterval: Duration = .seconds(5), concurrency: Int = 16,
                controllerUsers: Set<String> = ["stratus"], logger: Logger = Logger(label: "stratus.agent")) {
        callers = controllerUsers.union([url.user])
        self.url = url
        self.agents = agents
        self.roles = roles
        self.version = version
        self.heartbeatInterval = heartbeatInterval
        self.concurrency = concurrency
        self.logger = logger
    }

    public func run() async throws {
        let publisher = AMQPPublisher(url: url, logger: logger) { connection throws(AMQPError) in try connection.declareTopicExchange(NodeWire.exchange) }
        // Heartbeats have a connection of their own: behind a burst of answers they would arrive
        // late, and a busy node would look silent.
        let beats = AMQPPublisher(url: url, logger: logger) { connection throws(AMQPError) in try connection.declareTopicExchange(NodeWire.exchange) }
        defer {
            publisher.close()
            beats.close()
        }
        try await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await serveCalls(of: agents, publisher: publisher) }
                for agent in agents {
                    group.addTask { await sendHeartbeats(of: agent, publisher: beats) }
                    group.addTask { await forwardEvents(of: agent, publisher: publisher) }
                }
            }
        }
        logger.info("agent stopped; answered \(answered.value) calls", metadata: ["stratus.calls": "\(answered.value)"])
    }

    /// Consumes the nodes' call queues (one connection and thread for all of them, each queue
    /// with its own prefetch) until cancelled; a call is acknowledged once answered.
    func serveCalls(of agents: [NodeAgent], publisher: AMQPPublisher) async {
        var byKey: [String: NodeAgent] = [:]
        for agent in agents { byKey[NodeWire.callKey(node: agent.name)] = agent }
        let nodes = agents.map(\.name)
        let consumer = AMQPConsumer(url: url, prefetch: UInt16(concurrency), logger: logger) { connection throws(AMQPError) in
            try connection.declareTopicExchange(NodeWire.exchange)
            var queues: [String] = []
            for node in nodes {
                let queue = try connection.declareQueue(NodeWire.callQueue(node: node), durable: true)
                try connection.bind(queue: queue, exchange: NodeWire.exchange, key: NodeWire.callKey(node: node))
                queues.append(queue)
            }
            return queues
        }
        // Instance ids are unique across nodes, so one line of calls per instance serves them all.
        let serial = PerInstance()
        await withTaskCancellationHandler {
            await withDiscardingTaskGroup { group in
                for await delivery in consumer.deliveries {
                    guard let agent = byKey[delivery.routingKey] else {
                        consumer.ack(delivery)
                        continue
                    }
                    let node = agent.name
                    // Delivered before to an agent that stopped before answering: its caller has
                    // given up and asks again with what it wants now, so the old call is not acted on.
                    if delivery.redelivered {
                        consumer.ack(delivery)
                        continue
                    }
                    guard let sender = delivery.userId, callers.contains(sender) else {
                        logger.warning("dropped a call from a broker user that is not the controller's", metadata: ["stratus.node": "\(node)", "stratus.amqp.user": "\(delivery.userId ?? "none")"])
                        consumer.ack(delivery)
                        continue
                    }
                    // Its place among the calls about the same instance is taken here, in delivery
                    // order: a remove sent after a converge never runs before it.
                    let work: Task<NodeAnswer, Never>
                    do {
                        let call = try NodeWire.decode(NodeCall.self, delivery.body)
                        work = await serial.schedule(call.instance) { await Self.answer(call, with: agent) }
                    } catch {
                        let answer = NodeAnswer(error: NodeError(.storage, "\(node)'s agent cannot read the call: \(error)"))
                        work = Task { answer }
                    }
                    group.addTask {
                        let answer = await work.value
                        do {
                            try await AMQPRequester.answer(delivery, with: NodeWire.encode(answer), on: publisher)
                        } catch {
                            logger.warning("cannot answer a call", metadata: ["stratus.node": "\(node)", "stratus.error": "\(error)"])
                        }
                        answered.add()
                        consumer.ack(delivery)
                    }
                }
            }
        } onCancel: {
            consumer.stop()
        }
    }

    /// What the node's agent does for one call.
    static func answer(_ call: NodeCall, with agent: NodeAgent) async -> NodeAnswer {
        do throws(NodeError) {
            switch call {
            case .converge(let intent): return NodeAnswer(report: try await agent.compute.converge(intent))
            case .remove(let id):
                try await agent.compute.remove(instance: id)
                return NodeAnswer()
            case .domains: return NodeAnswer(domains: try await agent.compute.domains())
            case .domainStates: return NodeAnswer(states: try await agent.compute.domainStates())
            case .domain(let name): return NodeAnswer(domain: try await agent.compute.domain(named: name))
            case .reboot(let id):
                try await agent.compute.reboot(instance: id)
                return NodeAnswer()
            case .console(let id): return NodeAnswer(console: agent.compute.consoleLog(instance: id))
            }
        } catch {
            return NodeAnswer(error: error)
        }
    }

    /// A heartbeat every interval: registration, capacity and liveness. Each expires after three
    /// intervals, so one that waited in a queue cannot make a dead node look alive.
    func sendHeartbeats(of agent: NodeAgent, publisher: AMQPPublisher) async {
        var warned = false
        while !Task.isCancelled {
            var report: NodeReport?
            var reportError: NodeError?
            do { report = try await agent.report() } catch { reportError = error }
            let heartbeat = NodeHeartbeat(
                node: agent.name, zone: agent.zone, roles: roles, version: version, report: report, reportError: reportError,
                intervalSeconds: Double(heartbeatInterval.components.seconds) + Double(heartbeatInterval.components.attoseconds) / 1e18
            )
            do {
                try await publisher.publish(exchange: NodeWire.exchange, key: NodeWire.heartbeatKey(node: agent.name), body: NodeWire.encode(heartbeat),
                                            persistent: false, expiration: heartbeatInterval * 3, deadline: heartbeatInterval)
                if warned { logger.info("heartbeats reach the broker again", metadata: ["stratus.node": "\(agent.name)"]) }
                warned = false
            } catch {
                if !warned { logger.warning("cannot send a heartbeat", metadata: ["stratus.node": "\(agent.name)", "stratus.error": "\(error)"]) }
                warned = true
            }
            try? await Task.sleep(for: heartbeatInterval)
        }
    }

    /// The node's domain events, to the controller (which re-queues the instances they concern).
    func forwardEvents(of agent: NodeAgent, publisher: AMQPPublisher) async {
        guard let events = agent.compute.events() else { return }
        for await event in events {
            try? await publisher.publish(exchange: NodeWire.exchange, key: NodeWire.eventKey(node: agent.name), body: NodeWire.encode(event),
                                         persistent: false, expiration: .seconds(60), deadline: .seconds(5))
        }
    }
}

extension NodeCall {
    /// The instance a call concerns, if one: calls about one instance are worked on one at a time.
    var instance: String? {
        switch self {
        case .converge(let intent): intent.id
        case .remove(let id), .reboot(let id): id
        case .console: nil
        case .domain(let name): name.hasPrefix("stratus-") ? String(name.dropFirst("stratus-".count)) : name
        case .domains, .domainStates: nil
        }
    }
}

/// Runs the calls about one instance one after another, in the order they are scheduled (a
/// retried converge may arrive while the first still runs); calls about different instances,
/// or none, run at once.
actor PerInstance {
    private var tails: [String: (turn: UInt64, task: Task<NodeAnswer, Never>)] = [:]
    private var turns: UInt64 = 0

    /// Starts `body` once every call scheduled before it about `instance` has finished.
    func schedule(_ instance: String?, _ body: @escaping @Sendable () async -> NodeAnswer) -> Task<NodeAnswer, Never> {
        guard let instance else { return Task { await body() } }
        let previous = tails[instance]?.task
        turns += 1
        let turn = turns
        let task = Task<NodeAnswer, Never> {
            _ = await previous?.value
            let answer = await body()
            await self.finished(instance, turn)
            return answer
        }
        tails[instance] = (turn, task)
        return task
    }

    /// The instance's line is forgotten once its last call is done.
    private func finished(_ instance: String, _ turn: UInt64) {
        if tails[instance]?.turn == turn { tails[instance] = nil }
    }
}

/// A count shared by the tasks of one service.
final class Counter: Sendable {
    private let count = Mutex(0)
    func add() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
