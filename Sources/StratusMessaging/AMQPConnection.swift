import CRabbitMQ
import Foundation

/// A message the broker delivered.
public struct AMQPDelivery: Sendable {
    public var body: [UInt8]
    public var exchange: String
    public var routingKey: String
    public var correlationId: String?
    public var replyTo: String?
    /// The broker's number for it on its channel; what `ack` names.
    public var deliveryTag: UInt64
    /// Delivered before to a consumer that did not acknowledge it (a consumer or connection lost).
    public var redelivered: Bool
    /// The user the sender logged in as: every publish carries it and the broker refuses a
    /// message whose `user_id` is not its connection's, so this names the sender.
    public var userId: String?
    /// Which of its consumer's connections it came on (`AMQPConsumer.ack` uses it).
    var connection = 0
}

/// One connection to the broker with one channel, over rabbitmq-c: blocking calls, for one
/// thread at a time (`AMQPPublisher` and `AMQPConsumer` each give theirs a thread of its own).
/// Closed when released.
public final class AMQPConnection {
    public let url: AMQPURL
    private let state: amqp_connection_state_t
    private let channel: amqp_channel_t = 1
    private var confirming = false
    /// The number the broker gives the next publish once confirms are on.
    private var nextPublish: UInt64 = 1
    /// Whether the broker still takes a close (it closed nothing, nothing failed).
    private var open = true
    private var destroyed = false

    /// Connects, logs in and opens channel 1; `timeout` bounds the connect and each RPC.
    ///
    /// - Parameters:
    ///   - heartbeat: seconds of silence after which either side counts the other lost.
    ///   - caCertificate: for `amqps://`, the PEM file the broker's certificate must chain to
    ///     (the peer and its host name are always verified).
    public init(url: AMQPURL, heartbeat: Int = 30, timeout: Duration = .seconds(10), caCertificate: String? = nil) throws(AMQPError) {
        self.url = url
        guard let state = amqp_new_connection() else { throw AMQPError("cannot allocate an AMQP connection") }
        self.state = state
        let socket = url.tls ? amqp_ssl_socket_new(state) : amqp_tcp_socket_new(state)
        guard let socket else {
            abandon()
            throw AMQPError("cannot make a \(url.tls ? "TLS" : "TCP") socket for \(url)")
        }
        if url.tls {
            // This rabbitmq-c loads no default trust store: without a CA file, Debian's bundle.
            let caCertificate = caCertificate ?? "/etc/ssl/certs/ca-certificates.crt"
            if amqp_ssl_socket_set_cacert(socket, caCertificate) != AMQP_STATUS_OK.rawValue {
                abandon()
                throw AMQPError("cannot read the CA certificate \(caCertificate) for \(url)")
            }
            amqp_ssl_socket_set_verify_peer(socket, 1)
            amqp_ssl_socket_set_verify_hostname(socket, 1)
        }
        let components = timeout.components
        var limit = timeval(tv_sec: Int(components.seconds), tv_usec: Int(components.attoseconds / 1_000_000_000_000))
        let opened = amqp_socket_open_noblock(socket, url.host, Int32(url.port), &limit)
        guard opened == AMQP_STATUS_OK.rawValue else {
            abandon()
            throw AMQPError("cannot connect to the broker at \(url): \(String(cString: amqp_error_string2(opened)))")
        }
        amqp_set_rpc_timeout(state, &limit)
        let login = stratus_amqp_login(state, url.virtualHost, Int32(heartbeat), url.user, url.password)
        guard login.reply_type == AMQP_RESPONSE_NORMAL else {
            let why = Self.describe(login)
            abandon()
            throw AMQPError("the broker at \(url) refused the login of \(url.user): \(why) (check the user, its password and its permissions on virtual host \(url.virtualHost))")
        }
        _ = amqp_channel_open(state, channel)
        try check("open a channel")
    }

    deinit { close() }

    /// Frees a connection that never opened (a failed init: deinit runs then, and must not free it again).
    private func abandon() {
        open = false
        destroyed = true
        amqp_destroy_connection(state)
    }

    /// Closes the channel and the connection (politely, when they are still open) and frees it.
    public func close() {
        guard !destroyed else { return }
        destroyed = true
        if open {
            open = false
            amqp_channel_close(state, channel, Int32(AMQP_REPLY_SUCCESS))
            amqp_connection_close(state, Int32(AMQP_REPLY_SUCCESS))
        }
        amqp_destroy_connection(state)
    }

    static func describe(_ reply: amqp_rpc_reply_t) -> String {
        var buffer = [CChar](repeating: 0, count: 512)
        stratus_amqp_describe(reply, &buffer, buffer.count)
        return String(cString: buffer)
    }

    private func check(_ what: String) throws(AMQPError) {
        let reply = amqp_get_rpc_reply(state)
        guard reply.reply_type == AMQP_RESPONSE_NORMAL else {
            // After the broker's close or a library failure (a dead socket) a polite close would only wait.
            open = false
            throw AMQPError("cannot \(what) on \(url): \(Self.describe(reply))")
        }
    }

    /// A durable topic exchange (idempotent; a different type under the same name is the broker's PRECONDITION_FAILED).
    public func declareTopicExchange(_ name: String) throws(AMQPError) {
        stratus_amqp_declare_exchange(state, channel, name, "topic", 1)
        try check("declare exchange \(name)")
    }

    /// Declares a queue and returns its name (the broker's, for `""`). A quorum queue is durable
    /// and replicated; an exclusive one belongs to this connection and goes with it.
    @discardableResult
    public func declareQueue(_ name: String, durable: Bool = true, quorum: Bool = false, exclusive: Bool = false, autoDelete: Bool = false) throws(AMQPError) -> String {
        let declared = stratus_amqp_declare_queue(state, channel, name, durable ? 1 : 0, exclusive ? 1 : 0, autoDelete ? 1 : 0, quorum ? 1 : 0)
        try check("declare queue \(name.isEmpty ? "(named by the broker)" : name)")
        guard let declared else { return name }
        return Self.string(declared.pointee.queue)
    }

    public func bind(queue: String, exchange: String, key: String) throws(AMQPError) {
        stratus_amqp_bind(state, channel, queue, exchange, key)
        try check("bind \(queue) to \(exchange) with \(key)")
    }

    /// Drops every message waiting in `queue` (not those delivered and not yet acknowledged);
    /// returns how many. A queue that does not exist is the broker's NOT_FOUND, which closes the channel.
    @discardableResult
    public func purge(queue: String) throws(AMQPError) -> Int {
        let dropped = stratus_amqp_purge(state, channel, queue)
        try check("purge \(queue)")
        return max(0, dropped)
    }

    /// Publisher confirms: from now on every `publish` waits for the broker to take the message.
    public func enableConfirms() throws(AMQPError) {
        _ = amqp_confirm_select(state, channel)
        try check("turn on publisher confirms")
        confirming = true
        nextPublish = 1
    }

    /// Publishes a message. With confirms on, returns once the broker has it (for a durable
    /// queue and a persistent message: written); a nack, a return (with `mandatory`, when no
    /// queue is bound to `key`) or `timeout` throws.
    ///
    /// With `expiration` the broker drops the message once it has waited that long in a queue
    /// (a request nobody took in time must not be acted on later).
    public func publish(exchange: String, key: String, body: [UInt8], correlationId: String? = nil, replyTo: String? = nil, persistent: Bool = true,
                        mandatory: Bool = false, expiration: Duration? = nil, timeout: Duration = .seconds(10)) throws(AMQPError) {
        amqp_maybe_release_buffers(state)
        let milliseconds = expiration.map { String(max(1, $0.components.seconds * 1000 + $0.components.attoseconds / 1_000_000_000_000_000)) }
        let status = body.withUnsafeBytes { bytes in
            stratus_amqp_publish(state, channel, exchange, key, bytes.baseAddress, bytes.count, correlationId, replyTo, persistent ? 1 : 0, mandatory ? 1 : 0,
                                 url.user, milliseconds)
        }
        guard status == AMQP_STATUS_OK.rawValue else {
            open = false
            throw AMQPError("cannot publish to \(exchange) \(key) on \(url): \(String(cString: amqp_error_string2(status)))")
        }
        guard confirming else { return }
        let tag = nextPublish
        nextPublish += 1
        let components = timeout.components
        let answer = stratus_amqp_wait_confirm(state, tag, Int32(components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000))
        switch answer {
        case 1: return
        case 0: throw AMQPError("the broker refused the message to \(exchange) \(key) (nack)")
        case 2: throw AMQPError("no queue takes messages for \(key) on \(exchange) (returned)")
        case 3:
            // A dead peer would make a polite close wait for its RPC timeout: this connection is only freed.
            open = false
            throw AMQPError("the broker did not confirm the message to \(exchange) \(key) within \(timeout)")
        case 4:
            open = false
            throw AMQPError("the broker closed the channel while confirming a message to \(exchange) \(key)")
        default:
            open = false
            throw AMQPError("lost the broker at \(url) while confirming a message: \(String(cString: amqp_error_string2(answer)))")
        }
    }

    /// At most `prefetch` unacknowledged deliveries at once.
    public func qos(prefetch: UInt16) throws(AMQPError) {
        _ = amqp_basic_qos(state, channel, 0, prefetch, 0)
        try check("set the prefetch to \(prefetch)")
    }

    /// Starts delivering `queue`'s messages, each to be acknowledged (`ack`).
    public func consume(_ queue: String) throws(AMQPError) {
        stratus_amqp_consume(state, channel, queue)
        try check("consume \(queue)")
    }

    /// The next delivery, or nil when none came within `timeout`. Throws when the connection is lost.
    public func next(timeout: Duration) throws(AMQPError) -> AMQPDelivery? {
        amqp_maybe_release_buffers(state)
        let components = timeout.components
        var limit = timeval(tv_sec: Int(components.seconds), tv_usec: Int(components.attoseconds / 1_000_000_000_000))
        var envelope = amqp_envelope_t()
        let reply = amqp_consume_message(state, &envelope, &limit, 0)
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            defer { amqp_destroy_envelope(&envelope) }
            let properties = envelope.message.properties
            return AMQPDelivery(
                body: Array(UnsafeRawBufferPointer(start: envelope.message.body.bytes, count: envelope.message.body.len)),
                exchange: Self.string(envelope.exchange), routingKey: Self.string(envelope.routing_key),
                correlationId: properties._flags & STRATUS_AMQP_CORRELATION_ID_FLAG != 0 ? Self.string(properties.correlation_id) : nil,
                replyTo: properties._flags & STRATUS_AMQP_REPLY_TO_FLAG != 0 ? Self.string(properties.reply_to) : nil,
                deliveryTag: envelope.delivery_tag, redelivered: envelope.redelivered != 0,
                userId: properties._flags & STRATUS_AMQP_USER_ID_FLAG != 0 ? Self.string(properties.user_id) : nil)
        case AMQP_RESPONSE_LIBRARY_EXCEPTION where reply.library_error == AMQP_STATUS_TIMEOUT.rawValue:
            return nil
        case AMQP_RESPONSE_LIBRARY_EXCEPTION where reply.library_error == AMQP_STATUS_UNEXPECTED_STATE.rawValue:
            // A frame other than a delivery: a close from the broker ends the connection; others are skipped.
            var frame = amqp_frame_t()
            var none = timeval(tv_sec: 0, tv_usec: 0)
            let status = amqp_simple_wait_frame_noblock(state, &frame, &none)
            if status == AMQP_STATUS_OK.rawValue, frame.frame_type == UInt8(AMQP_FRAME_METHOD),
                frame.payload.method.id == STRATUS_AMQP_CHANNEL_CLOSE_METHOD || frame.payload.method.id == STRATUS_AMQP_CONNECTION_CLOSE_METHOD {
                open = false
                throw AMQPError("the broker at \(url) closed the consumer's channel")
            }
            return nil
        default:
            open = false
            throw AMQPError("lost the broker at \(url): \(Self.describe(reply))")
        }
    }

    /// Acknowledges a delivery (and every earlier one with `multiple`): the broker forgets it.
    public func ack(_ deliveryTag: UInt64, multiple: Bool = false) throws(AMQPError) {
        let status = amqp_basic_ack(state, channel, deliveryTag, multiple ? 1 : 0)
        guard status == AMQP_STATUS_OK.rawValue else {
            open = false
            throw AMQPError("cannot acknowledge delivery \(deliveryTag) on \(url): \(String(cString: amqp_error_string2(status)))")
        }
    }

    static func string(_ bytes: amqp_bytes_t) -> String {
        String(decoding: UnsafeRawBufferPointer(start: bytes.bytes, count: bytes.len), as: UTF8.self)
    }
}
