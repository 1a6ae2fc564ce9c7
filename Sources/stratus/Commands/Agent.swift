import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import StratusAgent
import StratusCompute
import StratusMessaging
import StratusModel
import StratusNode
import StratusServer
import UnixSignals

extension Stratus {
    /// `stratus agent`: a node (or several hollow ones) for a `stratus serve --role controller`.
    struct Agent: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a node agent: converge what a controller places on this node, reached through RabbitMQ.",
            discussion: """
                The agent consumes its node's queue on the broker, converges each instance the controller \
                sends (the same node-side code `stratus serve` runs in one process), answers, and sends a \
                heartbeat with the node's capacity every --heartbeat-interval. The controller registers the \
                node at its first heartbeat and counts it NotReady (NodeLost) after its --node-timeout of silence.

                The data directory holds this node's image cache, disks and console logs, never a store: \
                the agent does not open the controller's database.

                Give each node its own broker user, node-NAME, so it can speak only for itself: the broker \
                stamps every message with its sender and the controller drops what a node sends for another. \
                A user shared with the controller may speak for any node. --print-broker-permissions prints the \
                rabbitmqctl commands that give the node's user what an agent needs and nothing more: its own \
                queue and routing keys, the exchange, and answers through the default exchange.

                Examples:
                  stratus agent --amqp amqp://node-n1@mq1:5672/ \\
                    --amqp-password-file /etc/stratus/amqp-n1 \\
                    --node n1 --hypervisor qemu:///system
                  stratus agent --amqp amqp://stratus@127.0.0.1:5672/ \\
                    --amqp-password-file pw --node n2 --hypervisor test
                  # what to run on the broker for n1's user
                  stratus agent --node n1 --print-broker-permissions
                  # 100 hollow nodes in one process (for benchmarks)
                  stratus agent --amqp … --node hollow --nodes 100 --hypervisor test \\
                    --node-capacity cpus=64,memory=256Gi
                """
        )

        @Option(help: ArgumentHelp("The broker, amqp://USER@HOST:PORT/VHOST (amqps:// for TLS); also STRATUS_AMQP.", valueName: "url"))
        var amqp: String?

        @Option(help: ArgumentHelp("File holding the broker password (never the password itself on the command line).", valueName: "file"))
        var amqpPasswordFile: String?

        @Option(help: ArgumentHelp("This node's name. Default: the host name.", valueName: "name"))
        var node: String?

        @Option(help: ArgumentHelp("Host this many simulated nodes, NAME-1 … NAME-COUNT, in one process (with --hypervisor test): hollow nodes for scale tests.", valueName: "count"))
        var nodes: Int = 1

        @Option(help: ArgumentHelp("This node's availability zone.", valueName: "zone"))
        var zone: String = NodeSpec.defaultZone

        @Option(help: ArgumentHelp("libvirt URI: qemu:///system, or test for simulated guests (each hollow node gets its own test driver).", valueName: "uri"))
        var hypervisor: String = "test"

        @Option(help: ArgumentHelp("Domain type for new domains: kvm, or qemu (TCG). Default: kvm when /dev/kvm really works.", valueName: "kvm|qemu"))
        var domainType: String?

        @Option(help: ArgumentHelp("The capacity to report instead of the hypervisor's, e.g. cpus=16,memory=64Gi.", valueName: "cpus=N,memory=SIZE"))
        var nodeCapacity: String?

        @Option(help: ArgumentHelp("What this node does; compute is what agents do today (volumes and networks still run in `stratus serve`).", valueName: "roles"))
        var roles: String = "compute"

        @Option(help: ArgumentHelp("Where the image cache, disks and console logs go; also STRATUS_DATA.", valueName: "dir"))
        var dataDir: String?

        @Option(help: ArgumentHelp("The broker user whose calls this agent answers: the controller's (repeatable). The agent's own user is always accepted.", valueName: "user"))
        var controllerUser: [String] = ["stratus"]

        @Option(help: ArgumentHelp("Seconds between heartbeats.", valueName: "seconds"))
        var heartbeatInterval: Double = 5

        @Option(help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error, critical.", valueName: "level"))
        var logLevel: String = "info"

        @Flag(help: "Print the rabbitmqctl commands that give this agent's broker user (from --amqp, else node-NAME) the least it needs, and exit.")
        var printBrokerPermissions = false

        func run() async throws {
            let environment = ProcessInfo.processInfo.environment
            if printBrokerPermissions { return try printPermissions(amqp ?? environment["STRATUS_AMQP"]) }
            guard let amqpText = amqp ?? environment["STRATUS_AMQP"] else {
                throw ValidationError("--amqp is required: the broker the controller listens on, e.g. --amqp amqp://node-n1@127.0.0.1:5672/")
            }
            let url: AMQPURL
            do { url = try AMQPURL(parsing: amqpText, passwordFile: amqpPasswordFile) } catch { throw ValidationError("--amqp: \(error)") }
            guard heartbeatInterval >= 0.1, heartbeatInterval <= 600 else { throw ValidationError("--heartbeat-interval: expected 0.1 to 600 seconds, got \(heartbeatInterval)") }
            guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("--log-level: expected trace, debug, info, notice, warning, error or critical, got \"\(logLevel)\"") }
            if let domainType, !["kvm", "qemu"].contains(domainType) { throw ValidationError("--domain-type: expected kvm or qemu, got \"\(domainType)\"") }
            let roleList = roles.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            if let other = roleList.first(where: { $0 != "compute" }) {
                throw ValidationError("--roles: \(other) does not run in agents yet (volumes and networks still run in `stratus serve`); use --roles compute")
            }
            var capacity: DeclaredCapacity?
            if let nodeCapacity {
                do { capacity = try DeclaredCapacity(parsing: nodeCapacity) } catch { throw ValidationError("--node-capacity: \(error)") }
            }
            let names = try nodeNames()
            if nodes > 1, hypervisor != "test" { throw ValidationError("--nodes: hollow nodes are simulated; use them with --hypervisor test") }
            let dataDirectory = dataDir ?? environment["STRATUS_DATA"] ?? ".stratus-agent"

            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
            let logger = Logger(label: "stratus.agent")
            var agents: [NodeAgent] = []
            for node in names {
                let directory = nodes == 1 ? dataDirectory : (dataDirectory as NSString).appendingPathComponent(node)
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                let uri = try Self.uri(hypervisor, node: node, directory: directory, private: nodes > 1)
                let driver = try reportingErrors { try LibvirtHypervisor(uri: uri, domainType: domainType, logger: Logger(label: "stratus.libvirt")) }
                let compute = ComputeAgent(node: node, hypervisor: driver, dataDirectory: directory)
                agents.append(NodeAgent(name: node, zone: zone, compute: compute, declaredCapacity: capacity))
            }
            logger.info("agent starting", metadata: [
                "stratus.amqp": "\(url)", "stratus.nodes": "\(names.count == 1 ? names[0] : "\(names[0]) … \(names[names.count - 1])")",
                "stratus.hypervisor": "\(hypervisor)", "stratus.dataDir": "\(dataDirectory)",
            ])
            let service = AgentService(url: url, agents: agents, roles: roleList, version: Stratus.configuration.version,
                                       heartbeatInterval: .milliseconds(Int(heartbeatInterval * 1000)), controllerUsers: Set(controllerUser), logger: logger)
            let group = ServiceGroup(configuration: .init(services: [.init(service: service)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
            logger.info("agent stopped")
        }

        /// The node names this agent hosts: `--node`, or NAME-1 … NAME-N with `--nodes N`.
        func nodeNames() throws -> [String] {
            guard (1...10_000).contains(nodes) else { throw ValidationError("--nodes: expected 1 to 10000, got \(nodes)") }
            let name = node ?? StratusServer.hostNodeName()
            let names = nodes == 1 ? [name] : (1...nodes).map { "\(name)-\($0)" }
            if let bad = names.first(where: { !NodeWire.validNodeName($0) }) {
                throw ValidationError("--node: \"\(bad)\" is not a node name: lower-case letters, digits and '-', at most 63, as a DNS label")
            }
            return names
        }

        /// `--print-broker-permissions`: shell lines for the broker's host, user and vhost from `--amqp` when given.
        func printPermissions(_ amqpText: String?) throws {
            let names = try nodeNames()
            guard names.count == 1 else {
                throw ValidationError("--print-broker-permissions: hollow nodes (--nodes) share one broker user, and the controller lets only its own user speak for several nodes; give them the controller's user instead")
            }
            let node = names[0]
            let user = "node-" + node
            var vhost = "/"
            if let amqpText {
                do {
                    let url = try AMQPURL(parsing: amqpText)
                    vhost = url.virtualHost
                    // Any other user would be refused by the controller for this node, or, if it is
                    // the controller's own, lose the permissions the controller needs.
                    if URLComponents(string: amqpText)?.user != nil, url.user != user {
                        throw ValidationError("--print-broker-permissions: node \(node)'s broker user must be \(user) (the controller accepts nothing else for it), not \(url.user)")
                    }
                } catch let error as AMQPError { throw ValidationError("--amqp: \(error)") }
            }
            func quoted(_ word: String) -> String {
                word.allSatisfy { $0.isLetter || $0.isNumber || "-_/.".contains($0) } ? word : "'" + word.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
            }
            print("# broker user \(user) for node \(node), on vhost \(vhost)")
            print("rabbitmqctl add_user \(quoted(user)) \"$(cat PASSWORD-FILE)\"   # once; the same file goes to --amqp-password-file")
            for command in BrokerPermissions(node: node).rabbitmqctl(user: user, vhost: vhost) {
                print((["rabbitmqctl"] + command).map(quoted).joined(separator: " "))
            }
        }

        /// The libvirt URI of one node: `test` is the test driver, private per node when one
        /// process hosts several (the default test driver is shared by a process's connections).
        static func uri(_ hypervisor: String, node: String, directory: String, private: Bool) throws -> String {
            guard hypervisor == "test" else { return hypervisor }
            guard `private` else { return "test:///default" }
            let host = NodeCapacity.host() ?? NodeCapacity(memoryMB: 8192, vcpus: 4, model: "t")
            var path = (directory as NSString).appendingPathComponent("test-node.xml")
            if !path.hasPrefix("/") { path = (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(path) }
            let xml = "<node><cpu><mhz>2000</mhz><model>t</model><nodes>1</nodes><sockets>1</sockets><cores>\(host.vcpus)</cores><threads>1</threads></cpu><memory>\(host.memoryMB * 1024)</memory></node>"
            try xml.write(toFile: path, atomically: true, encoding: .utf8)
            return "test://\(path)"
        }
    }
}
