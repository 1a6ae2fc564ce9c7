import Hummingbird
import HummingbirdCore
import Logging
import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization

/// What every HTTP listener of a server holds a client to: slow or idle connections and how many.
///
/// Hummingbird closes a connection that has been idle for `idleTimeout` while no request is in
/// flight, which includes one whose request head never completes (a slowloris client trickling
/// headers), so the timeout also bounds how long headers may take; a request being answered is
/// never cut. Beyond `maxConnections` open at once, new connections wait in the listen backlog,
/// which is as long as the kernel allows (`somaxconn`, 4096 on Debian) rather than Hummingbird's
/// 256: a burst of thousands of connections otherwise overflows it, and each connection dropped
/// there waits a second for its SYN to be sent again. One client address may hold at most
/// `maxConnectionsPerClient` of them: a connection beyond that is closed as soon as it is
/// accepted, so one host cannot take every slot.
public struct HTTPLimits: Sendable {
    public var idleTimeout: Duration
    public var maxConnections: Int
    public var maxConnectionsPerClient: Int

    public init(idleTimeout: Duration = .seconds(10), maxConnections: Int = 10_000, maxConnectionsPerClient: Int = 1_000) {
        self.idleTimeout = idleTimeout
        self.maxConnections = maxConnections
        self.maxConnectionsPerClient = maxConnectionsPerClient
    }

    /// The HTTP/1 server with the idle timeout and the per-client cap (counted per listener).
    ///
    /// With `expectContinue`, a request that sends `Expect: 100-continue` (boto3 and awscli do
    /// for every upload) is answered `100 Continue` at once: Hummingbird does not, and a client
    /// then waits a second before sending the body; one refused early would otherwise leave its
    /// body unsent while the server waits to drain it, and the next request on the connection
    /// would be read as that body.
    public func server(logger: Logger, expectContinue: Bool = false) -> HTTPServerBuilder {
        let components = idleTimeout.components
        let counts = ClientConnections(limit: maxConnectionsPerClient, logger: logger)
        return .http1(configuration: .init(
            additionalChannelHandlers: expectContinue ? [ClientConnectionHandler(counts: counts), ExpectContinueHandler()] : [ClientConnectionHandler(counts: counts)],
            idleTimeout: .nanoseconds(components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000)
        ))
    }

    /// An application configuration for `host:port` with the connection cap.
    public func configuration(host: String, port: Int, serverName: String, logger: Logger) -> ApplicationConfiguration {
        ApplicationConfiguration(
            address: .hostname(host, port: port), serverName: serverName, backlog: 4096,
            availableConnectionsDelegate: MaximumAvailableConnections.maximum(maxConnections, logger: logger)
        )
    }
}

/// Open connections per client address of one listener.
final class ClientConnections: Sendable {
    let limit: Int
    let logger: Logger
    private let counts = Mutex<[String: Int]>([:])

    init(limit: Int, logger: Logger) {
        self.limit = limit
        self.logger = logger
    }

    /// Counts a new connection from `address`; false (and nothing counted) when it is at the limit.
    func admit(_ address: String) -> Bool {
        counts.withLock { counts in
            let open = counts[address, default: 0]
            guard open < limit else { return false }
            counts[address] = open + 1
            return true
        }
    }

    func release(_ address: String) {
        counts.withLock { counts in
            let open = counts[address, default: 1] - 1
            counts[address] = open > 0 ? open : nil
        }
    }

    func open(from address: String) -> Int { counts.withLock { $0[address, default: 0] } }
}

/// Counts its connection against the client's address while the connection lives, and closes
/// it at once if that address already holds the maximum.
final class ClientConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    /// What passes through untouched (the HTTP request parts).
    typealias InboundIn = NIOAny

    private let counts: ClientConnections
    private var address: String?

    init(counts: ClientConnections) { self.counts = counts }

    func handlerAdded(context: ChannelHandlerContext) {
        // A connection without an IP address (a Unix socket) is not counted.
        guard let ip = context.channel.remoteAddress?.ipAddress else { return }
        if counts.admit(ip) {
            address = ip
        } else {
            counts.logger.debug("connection refused: too many from one client", metadata: ["stratus.client": "\(ip)", "stratus.limit": "\(counts.limit)"])
            let channel = context.channel
            channel.eventLoop.execute { channel.close(promise: nil) }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) { release() }

    func channelInactive(context: ChannelHandlerContext) {
        release()
        context.fireChannelInactive()
    }

    private func release() {
        guard let address else { return }
        counts.release(address)
        self.address = nil
    }
}

/// Answers `Expect: 100-continue` with `100 Continue` as soon as the request's head arrives.
final class ExpectContinueHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data), head.headerFields[.expect]?.lowercased() == "100-continue" {
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
        }
        context.fireChannelRead(data)
    }
}
