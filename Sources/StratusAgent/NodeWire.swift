import Foundation
import StratusCompute
import StratusNode

/// How the controller and node agents talk over the broker: one durable topic exchange, a
/// queue per node and role for calls, and one queue of the controller's for what nodes report.
///
/// | routing key             | from        | to                        | what                          |
/// |-------------------------|-------------|---------------------------|-------------------------------|
/// | `node.<node>.compute`   | controller  | `stratus.node.<node>.compute` | a `NodeCall`, answered to `reply_to` |
/// | `heartbeat.<node>`      | agent       | `stratus.controller`      | a `NodeHeartbeat`              |
/// | `event.<node>`          | agent       | `stratus.controller`      | a `NodeEvent`                  |
///
/// Every message carries the broker-checked `user_id` of its sender; the controller takes a
/// node's heartbeats, events and answers only from that node's user or its own (see
/// `NodeSenders`).
public enum NodeWire {
    public static let exchange = "stratus"
    public static let controllerQueue = "stratus.controller"

    /// Whether `name` may be a node on the wire: lower-case letters, digits and '-' (a DNS
    /// label), so it can never be a routing-key wildcard (`#`, `*`) or span words (`.`).
    public static func validNodeName(_ name: String) -> Bool {
        (1...63).contains(name.utf8.count) && name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d }
            && !name.hasPrefix("-") && !name.hasSuffix("-")
    }

    public static func callKey(node: String) -> String { "node.\(node).compute" }
    public static func callQueue(node: String) -> String { "stratus.node.\(node).compute" }
    public static func heartbeatKey(node: String) -> String { "heartbeat.\(node)" }
    public static func eventKey(node: String) -> String { "event.\(node)" }

    /// The node a `heartbeat.<node>` or `event.<node>` key is about.
    public static func node(ofKey key: String) -> String? {
        let parts = key.split(separator: ".", maxSplits: 1)
        guard parts.count == 2, parts[0] == "heartbeat" || parts[0] == "event" else { return nil }
        return String(parts[1])
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    public static func encode(_ value: some Encodable) -> [UInt8] {
        // Every wire type is plain data: encoding cannot fail.
        (try? Array(encoder.encode(value))) ?? []
    }

    public static func decode<T: Decodable>(_ type: T.Type, _ body: [UInt8]) throws -> T {
        try JSONDecoder().decode(type, from: Data(body))
    }
}

/// A call from the controller to one node's compute agent: `NodeTransport`'s calls as data.
public enum NodeCall: Codable, Sendable, Equatable {
    case converge(InstanceIntent)
    case remove(instance: String)
    case domains
    case domainStates
    case domain(name: String)
    case reboot(instance: String)
    case console(instance: String)
}

/// A node agent's answer to a `NodeCall`: what the call returns, or the node's error.
public struct NodeAnswer: Codable, Sendable, Equatable {
    public var report: InstanceReport?
    public var domains: [DomainInfo]?
    public var states: [String: DomainState]?
    public var domain: DomainInfo?
    public var console: String?
    public var error: NodeError?

    public init(report: InstanceReport? = nil, domains: [DomainInfo]? = nil, states: [String: DomainState]? = nil, domain: DomainInfo? = nil, console: String? = nil,
                error: NodeError? = nil) {
        self.console = console
        self.report = report
        self.domains = domains
        self.states = states
        self.domain = domain
        self.error = error
    }
}

/// What an agent says of its node every heartbeat interval: registration and liveness in one.
public struct NodeHeartbeat: Codable, Sendable, Equatable {
    public var node: String
    public var zone: String
    public var roles: [String]
    /// The agent's `stratus` version.
    public var version: String
    /// The node's capacity and hypervisor, or why the agent cannot read them now.
    public var report: NodeReport?
    public var reportError: NodeError?
    /// How often the agent sends these, so the controller can tell how late one is.
    public var intervalSeconds: Double

    public init(node: String, zone: String, roles: [String], version: String, report: NodeReport?, reportError: NodeError?, intervalSeconds: Double) {
        self.node = node
        self.zone = zone
        self.roles = roles
        self.version = version
        self.report = report
        self.reportError = reportError
        self.intervalSeconds = intervalSeconds
    }
}

/// Which broker users may speak for which node.
///
/// A node's agent logs in as the node's own user (`--amqp` with that user, as each compute
/// node had its own credentials in the seed), so a compromised agent cannot report on another
/// node: the broker stamps each message with its sender's user and refuses a forged one.
/// `shared` users (the controller's own, by default) may speak for any node, for clouds that
/// give every agent one account.
public struct NodeSenders: Sendable, Equatable {
    /// The user of node `N` is `prefix + N`.
    public var prefix: String
    public var shared: Set<String>

    public init(prefix: String = "node-", shared: Set<String>) {
        self.prefix = prefix
        self.shared = shared
    }

    /// Whether a message whose broker-checked sender is `user` may speak for `node`.
    public func allows(_ user: String?, for node: String) -> Bool {
        guard let user else { return false }
        return shared.contains(user) || user == prefix + node
    }
}

/// The least a node agent's broker user needs, as RabbitMQ's permissions: the agent declares
/// the exchange and its nodes' call queues, binds them to their keys, consumes them, publishes
/// heartbeats and events under its nodes' keys, and answers through the default exchange to
/// the caller's reply queue. The broker refuses it another node's queue (consuming, declaring,
/// binding) and keys, and the controller's queue. Through the default exchange it can still put
/// a message into any queue it can name; the receivers drop those (the routing key and the
/// broker-stamped sender must match), so that is noise, not a way in.
public struct BrokerPermissions: Sendable, Equatable {
    /// Regular expressions over resource names, as `rabbitmqctl set_permissions` takes them.
    public var configure: String
    public var write: String
    public var read: String
    /// Over routing keys on the `stratus` exchange, as `rabbitmqctl set_topic_permissions`.
    public var topicWrite: String
    public var topicRead: String

    /// For `node-NODE`, which speaks for `node` alone (the controller accepts nothing else from
    /// it). Node names are DNS labels, which hold nothing a regular expression reads specially.
    public init(node pattern: String) {
        let queue = #"stratus\.node\."# + pattern + #"\.compute"#
        configure = "^(\(NodeWire.exchange)|\(queue))$"
        write = "^(\(NodeWire.exchange)|amq\\.default|\(queue))$"
        read = "^(\(NodeWire.exchange)|\(queue))$"
        topicWrite = #"^(heartbeat|event)\."# + pattern + "$"
        topicRead = #"^node\."# + pattern + #"\.compute$"#
    }

    /// The `rabbitmqctl` arguments that give `user` these permissions on `vhost`.
    public func rabbitmqctl(user: String, vhost: String) -> [[String]] {
        [
            ["set_permissions", "-p", vhost, user, configure, write, read],
            ["set_topic_permissions", "-p", vhost, user, NodeWire.exchange, topicWrite, topicRead],
        ]
    }
}
