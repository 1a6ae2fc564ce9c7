import Foundation
import Logging
import Synchronization

/// Waits between reconnects: 0.1 s, doubling to `ceiling`, started over once a connection holds.
struct Backoff {
    var next: Duration = .milliseconds(100)
    let ceiling: Duration

    init(ceiling: Duration = .seconds(5)) { self.ceiling = ceiling }

    mutating func wait() {
        let components = next.components
        usleep(UInt32(components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000))
        next = min(next * 2, ceiling)
    }

    mutating func reset() { next = .milliseconds(100) }
}

/// Publishes with publisher confirms on a connection of its own, from a thread of its own (a
/// serial dispatch queue: rabbitmq-c's calls block). A lost connection is made again, with
/// backoff, and the message sent again until `deadline` passes: a message may then arrive
/// twice, which level-triggered receivers take as harmless.
public final class AMQPPublisher: @unchecked Sendable {  // `connection` and `backoff` are touched on `queue` only
    let url: AMQPURL
    let setup: @Sendable (AMQPConnection) throws(AMQPError) -> Void
    let logger: Logger
    private let queue = DispatchQueue(label: "stratus.amqp.publisher")
    private var connection: AMQPConnection?
    private var backoff = Backoff()

    /// - Parameter setup: declares what the publisher needs (exchanges) on each new connection.
    public init(url: AMQPURL, logger: Logger = Logger(label: "stratus.amqp"), setup: @escaping @Sendable (AMQPConnection) throws(AMQPError) -> Void = { _ in }) {
        self.url = url
        self.setup = setup
        self.logger = logger
    }

    public func publish(exchange: String, key: String, body: [UInt8], correlationId: String? = nil, replyTo: String? = nil, persistent: Bool = true,
                        mandatory: Bool = false, expiration: Duration? = nil, deadline: Duration = .seconds(30)) async throws(AMQPError) {
        // From the call, not from when the queue gets to it: publishes waiting behind a dead broker do not each get a fresh deadline.
        let until = ContinuousClock.now + deadline
        let result: Result<Void, AMQPError> = await withCheckedContinuation { continuation in
            queue.async {
                continuation.resume(returning: Result { () throws(AMQPError) in
                    try self.publishBlocking(exchange: exchange, key: key, body: body, correlationId: correlationId, replyTo: replyTo,
                                             persistent: persistent, mandatory: mandatory, expiration: expiration, until: until)
                })
            }
        }
        try result.get()
    }

    private func publishBlocking(exchange: String, key: String, body: [UInt8], correlationId: String?, replyTo: String?, persistent: Bool, mandatory: Bool,
                                 expiration: Duration?, until deadline: ContinuousClock.Instant) throws(AMQPError) {
        while true {
            do {
                let open: AMQPConnection
                if let connection {
                    open = connection
                } else {
                    // No heartbeats: an idle publisher makes no library calls to send them, and a
                    // dead connection shows at the next publish, which then reconnects.
                    let made = try AMQPConnection(url: url, heartbeat: 0)
                    try setup(made)
                    try made.enableConfirms()
                    connection = made
                    open = made
                }
                try open.publish(exchange: exchange, key: key, body: body, correlationId: correlationId, replyTo: replyTo, persistent: persistent, mandatory: mandatory,
                                 expiration: expiration)
                backoff.reset()
                return
            } catch {
                let failure = error as? AMQPError ?? AMQPError("\(error)")
                // A refusal of this message (nack, return) is final; a lost connection is tried again.
                if failure.description.contains("(nack)") || failure.description.contains("(returned)") { throw failure }
                connection = nil
                guard ContinuousClock.now < deadline else { throw failure }
                logger.warning("publish failed; reconnecting", metadata: ["stratus.amqp": "\(url)", "stratus.error": "\(failure)"])
                backoff.wait()
            }
        }
    }

    /// Closes the connection (a later publish opens another).
    public func close() { queue.sync { connection = nil } }
}

/// Consumes one queue (or several, on one channel) with manual acknowledgements and a prefetch
/// per queue, on a connection and a thread of its own. After a broker or network loss it
/// connects again with backoff, runs `setup` again (which declares the topology and names the
/// queues to consume) and goes on; what was delivered and not acknowledged comes again
/// (`redelivered`).
public final class AMQPConsumer: Sendable {
    public let deliveries: AsyncStream<AMQPDelivery>
    let url: AMQPURL
    let prefetch: UInt16
    let setup: @Sendable (AMQPConnection) throws(AMQPError) -> [String]
    let logger: Logger
    private let continuation: AsyncStream<AMQPDelivery>.Continuation
    private struct State {
        var stopped = false
        var acks: [(tag: UInt64, generation: Int)] = []
        var generation = 0
        var queue: String?
        var connected = false
    }
    private let state = Mutex(State())

    /// - Parameter setup: on each new connection, declares the exchanges, queues and bindings and
    ///   returns the queue to consume (the broker names an exclusive one anew each time).
    public convenience init(url: AMQPURL, prefetch: UInt16 = 100, logger: Logger = Logger(label: "stratus.amqp"), setup: @escaping @Sendable (AMQPConnection) throws(AMQPError) -> String) {
        self.init(url: url, prefetch: prefetch, logger: logger, queues: { connection throws(AMQPError) in [try setup(connection)] })
    }

    /// Consumes every queue `queues` declares and names, each with its own prefetch, on one
    /// channel and one thread (many nodes of one agent process: one thread, not one each).
    public init(url: AMQPURL, prefetch: UInt16 = 100, logger: Logger = Logger(label: "stratus.amqp"), queues setup: @escaping @Sendable (AMQPConnection) throws(AMQPError) -> [String]) {
        self.url = url
        self.prefetch = prefetch
        self.setup = setup
        self.logger = logger
        (deliveries, continuation) = AsyncStream.makeStream(bufferingPolicy: .unbounded)
        // Its thread holds it until `stop`.
        let thread = Thread { [self] in self.run() }
        thread.name = "stratus.amqp.consumer"
        thread.start()
    }

    /// The queue being consumed, once connected (it changes after a reconnect when the broker names it).
    public var queue: String? { state.withLock { $0.connected ? $0.queue : nil } }

    /// Acknowledges a delivery. One from before a reconnect is not: the broker has put it back
    /// and delivers it again.
    public func ack(_ delivery: AMQPDelivery) {
        state.withLock { $0.acks.append((delivery.deliveryTag, delivery.connection)) }
    }

    /// Stops consuming; unacknowledged deliveries go back to the queue.
    public func stop() {
        state.withLock { $0.stopped = true }
    }

    private func run() {
        var backoff = Backoff()
        while !state.withLock({ $0.stopped }) {
            let connection: AMQPConnection
            let generation: Int
            do {
                connection = try AMQPConnection(url: url)
                let queues = try setup(connection)
                // Set before the consumers start, the prefetch holds for each of them.
                try connection.qos(prefetch: prefetch)
                for queue in queues { try connection.consume(queue) }
                generation = state.withLock { state in
                    state.generation += 1
                    state.queue = queues.first
                    state.connected = true
                    state.acks.removeAll()
                    return state.generation
                }
                backoff.reset()
            } catch {
                logger.warning("cannot consume; trying again", metadata: ["stratus.amqp": "\(url)", "stratus.error": "\(error)"])
                backoff.wait()
                continue
            }
            do {
                while !state.withLock({ $0.stopped }) {
                    let acks = state.withLock { state -> [UInt64] in
                        defer { state.acks.removeAll() }
                        return state.acks.filter { $0.generation == generation }.map(\.tag)
                    }
                    for tag in acks { try connection.ack(tag) }
                    if var delivery = try connection.next(timeout: .milliseconds(50)) {
                        // Delivery tags start again at 1 on each channel: an ack names its connection too.
                        delivery.connection = generation
                        continuation.yield(delivery)
                    }
                }
                connection.close()
            } catch {
                state.withLock { $0.connected = false }
                logger.warning("lost the broker; reconnecting", metadata: ["stratus.amqp": "\(url)", "stratus.error": "\(error)"])
                backoff.wait()
            }
        }
        state.withLock { $0.connected = false }
        continuation.finish()
    }
}
