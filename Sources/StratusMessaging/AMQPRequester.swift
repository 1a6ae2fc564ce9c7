import Foundation
import Logging
import Synchronization

/// Request and reply over the broker (AMQP's RPC pattern): a request carries a correlation id
/// and `reply_to`, this process's exclusive reply queue (named by the broker); the answer that
/// carries the same id completes the call. A call not answered within its timeout throws, and
/// an answer that comes later is dropped.
public final class AMQPRequester: Sendable {
    let publisher: AMQPPublisher
    let replies: AMQPConsumer
    private let waiting = Waiting()
    private let listener: Task<Void, Never>

    private let watcher: Task<Void, Never>

    /// The calls waiting for their answers, by correlation id, with the reply queue each named.
    final class Waiting: Sendable {
        private let calls = Mutex<[String: (call: CheckedContinuation<AMQPDelivery, any Error>, replyTo: String, timer: Task<Void, Never>?)]>([:])
        func add(_ id: String, _ call: CheckedContinuation<AMQPDelivery, any Error>, replyTo: String) { calls.withLock { $0[id] = (call, replyTo, nil) } }
        /// The call's timeout, cancelled when the call ends otherwise (thousands of calls must not leave as many sleeping timers).
        func attach(_ timer: Task<Void, Never>, to id: String) {
            let ended = calls.withLock { calls -> Bool in
                guard calls[id] != nil else { return true }
                calls[id]!.timer = timer
                return false
            }
            if ended { timer.cancel() }
        }
        func take(_ id: String) -> CheckedContinuation<AMQPDelivery, any Error>? {
            guard let taken = calls.withLock({ $0.removeValue(forKey: id) }) else { return nil }
            taken.timer?.cancel()
            return taken.call
        }
        /// Takes the calls whose answers would go to another queue than `current`.
        func takeOrphans(current: String?) -> [CheckedContinuation<AMQPDelivery, any Error>] {
            calls.withLock { calls in
                let orphans = calls.filter { $0.value.replyTo != current }
                for (id, orphan) in orphans {
                    calls[id] = nil
                    orphan.timer?.cancel()
                }
                return orphans.values.map(\.call)
            }
        }
    }

    public init(url: AMQPURL, logger: Logger = Logger(label: "stratus.amqp")) {
        publisher = AMQPPublisher(url: url, logger: logger)
        let replies = AMQPConsumer(url: url, prefetch: 1000, logger: logger) { connection throws(AMQPError) in
            try connection.declareQueue("", durable: false, exclusive: true, autoDelete: true)
        }
        self.replies = replies
        let waiting = self.waiting
        listener = Task {
            for await reply in replies.deliveries {
                replies.ack(reply)
                guard let id = reply.correlationId, let caller = waiting.take(id) else { continue }
                caller.resume(returning: reply)
            }
        }
        // The reply queue is exclusive to its connection: when that is lost, the answers of the
        // calls waiting on it cannot come, so they fail at once instead of at their timeouts.
        watcher = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
                for call in waiting.takeOrphans(current: replies.queue) {
                    call.resume(throwing: AMQPError("lost the broker connection the answer was to come on; ask again"))
                }
            }
        }
    }

    /// Sends `body` to `key` on `exchange` and waits for the answer. Throws when no queue takes
    /// the request, or when no answer comes within `timeout`.
    public func request(exchange: String, key: String, body: [UInt8], timeout: Duration = .seconds(10)) async throws -> AMQPDelivery {
        let start = ContinuousClock.now
        var replyTo = replies.queue
        while replyTo == nil, ContinuousClock.now < start + timeout {
            try await Task.sleep(for: .milliseconds(20))
            replyTo = replies.queue
        }
        let remaining = timeout - (ContinuousClock.now - start)
        guard let replyTo, remaining > .zero else { throw AMQPError("no reply queue on \(publisher.url) within \(timeout): is the broker up?") }
        let id = UUID().uuidString
        let waiting = self.waiting
        let publisher = self.publisher
        // A cancelled caller stops waiting at once; an answer that comes later is dropped.
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
            // Registered before the timer starts, so the timer always finds the call it ends.
            waiting.add(id, continuation, replyTo: replyTo)
            // Cancelled before it was registered: the cancellation handler found nothing to end.
            if Task.isCancelled {
                waiting.take(id)?.resume(throwing: CancellationError())
                return
            }
            let timer = Task {
                guard (try? await Task.sleep(for: remaining)) != nil else { return }
                waiting.take(id)?.resume(throwing: AMQPError("no answer to \(key) within \(timeout)"))
            }
            waiting.attach(timer, to: id)
            Task {
                do {
                    // A request still queued when its caller gave up expires there, unanswered and not acted on.
                    try await publisher.publish(exchange: exchange, key: key, body: body, correlationId: id, replyTo: replyTo, persistent: false, mandatory: true,
                                                expiration: remaining, deadline: remaining)
                } catch {
                    waiting.take(id)?.resume(throwing: error)
                }
            }
        }
        } onCancel: {
            waiting.take(id)?.resume(throwing: CancellationError())
        }
    }

    /// Answers a request: `body` to its `reply_to`, with its correlation id.
    public static func answer(_ request: AMQPDelivery, with body: [UInt8], on publisher: AMQPPublisher) async throws(AMQPError) {
        guard let replyTo = request.replyTo else { return }
        try await publisher.publish(exchange: "", key: replyTo, body: body, correlationId: request.correlationId, persistent: false)
    }

    public func stop() {
        replies.stop()
        listener.cancel()
        watcher.cancel()
        for call in waiting.takeOrphans(current: nil) { call.resume(throwing: AMQPError("the requester was stopped")) }
        publisher.close()
    }
}
