import Hummingbird
import HummingbirdCore
import Logging

/// What every HTTP listener of a server holds a client to: slow or idle connections and how many.
///
/// Hummingbird closes a connection that has been idle for `idleTimeout` while no request is in
/// flight, which includes one whose request head never completes (a slowloris client trickling
/// headers), so the timeout also bounds how long headers may take; a request being answered is
/// never cut. Beyond `maxConnections` open at once, new connections wait in the listen backlog,
/// which is as long as the kernel allows (`somaxconn`, 4096 on Debian) rather than Hummingbird's
/// 256: a burst of thousands of connections otherwise overflows it, and each connection dropped
/// there waits a second for its SYN to be sent again.
public struct HTTPLimits: Sendable {
    public var idleTimeout: Duration
    public var maxConnections: Int

    public init(idleTimeout: Duration = .seconds(10), maxConnections: Int = 10_000) {
        self.idleTimeout = idleTimeout
        self.maxConnections = maxConnections
    }

    /// The HTTP/1 server with the idle timeout.
    public var server: HTTPServerBuilder {
        let components = idleTimeout.components
        return .http1(configuration: .init(idleTimeout: .nanoseconds(components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000)))
    }

    /// An application configuration for `host:port` with the connection cap.
    public func configuration(host: String, port: Int, serverName: String, logger: Logger) -> ApplicationConfiguration {
        ApplicationConfiguration(
            address: .hostname(host, port: port), serverName: serverName, backlog: 4096,
            availableConnectionsDelegate: MaximumAvailableConnections.maximum(maxConnections, logger: logger)
        )
    }
}
