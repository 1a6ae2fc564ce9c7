import Foundation
import StratusAgent
import StratusCompute
import StratusMessaging
import StratusTestSupport
import Testing

/// A `stratus agent` process, stopped by its PID.
final class AgentProcess {
    let process = Process()
    let log: String
    let arguments: [String]

    init(cli: CLI, arguments: [String]) throws {
        self.arguments = arguments
        log = "\(cli.workDirectory)/agent-\(UUID().uuidString.prefix(6)).log"
        try start()
    }

    private init(log: String, arguments: [String]) throws {
        self.log = log
        self.arguments = arguments
        try start()
    }

    private func start() throws {
        if !FileManager.default.fileExists(atPath: log) { FileManager.default.createFile(atPath: log, contents: nil) }
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["agent"] + arguments
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    /// The same agent started again (same arguments, same log).
    func restarted() throws -> AgentProcess { try AgentProcess(log: log, arguments: arguments) }

    func kill(_ signal: Int32) {
        Foundation.kill(process.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
}

/// A controller (`serve --role controller`) and three `stratus agent` processes, each its own
/// libvirt test-driver node, through a real RabbitMQ broker (issue 16).
@Suite(.serialized) struct AgentTests {
    /// alice's project acme with room for 100 instances and an image the test driver never opens.
    static let acme = """
        apiVersion: stratus/v1
        kind: User
        metadata: {name: alice}
        spec: {projects: [{project: acme, roles: [sysadmin]}]}
        ---
        apiVersion: stratus/v1
        kind: Project
        metadata: {name: acme}
        spec: {manager: alice, quotas: {instances: 100, cores: 1000, ram: 1000000}}
        ---
        apiVersion: stratus/v1
        kind: Image
        metadata: {name: debian, project: acme}
        spec: {source: /images/debian.qcow2}

        """

    /// Every instance's phase, node and Ready reason, by name.
    static func instances(_ cli: CLI) async throws -> [String: (phase: String, node: String?, reason: String?)] {
        let result = try await cli.run("get", "instances", "-A", "-o", "json")
        guard let list = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], let items = list["items"] as? [[String: Any]] else { return [:] }
        var found: [String: (String, String?, String?)] = [:]
        for item in items {
            guard let name = (item["metadata"] as? [String: Any])?["name"] as? String else { continue }
            let status = item["status"] as? [String: Any]
            let ready = (status?["conditions"] as? [[String: Any]])?.first { $0["type"] as? String == "Ready" }
            found[name] = ((status?["phase"] as? String) ?? "", (status?["details"] as? [String: Any])?["node"] as? String, ready?["reason"] as? String)
        }
        return found
    }

    /// Every node's status, by name.
    static func nodes(_ cli: CLI) async throws -> [String: [String: Any]] {
        let result = try await cli.run("get", "nodes", "-o", "json")
        guard let list = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], let items = list["items"] as? [[String: Any]] else { return [:] }
        var found: [String: [String: Any]] = [:]
        for item in items {
            guard let name = (item["metadata"] as? [String: Any])?["name"] as? String else { continue }
            found[name] = item["status"] as? [String: Any] ?? [:]
        }
        return found
    }

    /// The instances whose domains a node's agent holds, asked through the broker as the
    /// controller asks (as `user`; empty when the agent does not answer).
    static func domains(on node: String, broker: RabbitMQ, user: String? = nil, password: String? = nil) async throws -> [String] {
        var url = try AMQPURL(parsing: broker.url)
        if let user, let password { (url.user, url.password) = (user, password) }
        let requester = AMQPRequester(url: url)
        defer { requester.stop() }
        guard let reply = try? await requester.request(exchange: NodeWire.exchange, key: NodeWire.callKey(node: node), body: NodeWire.encode(NodeCall.domains), timeout: .seconds(5)),
            let answer = try? NodeWire.decode(NodeAnswer.self, reply.body)
        else { return [] }
        return (answer.domains ?? []).compactMap { $0.owner?.name }
    }

    /// Polls `condition` every 200 ms until it holds or `timeout` passes; returns whether it held.
    static func eventually(_ timeout: Duration, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(200))
        }
        return try await condition()
    }

    @Test("three agents through RabbitMQ: 30 instances spread over them; a silent agent's node goes NotReady, its instances with restartPolicy reschedule run elsewhere and the rest say NodeLost; back, it loses the moved copies and every instance runs once; after SIGKILL and a restart they run again; drain moves what may move and lists the rest; the console comes from the node; an agent speaking for another node, or a call from one, is ignored")
    func threeAgents() async throws {
        guard RabbitMQ.isInstalled else {
            Issue.record("skipped: rabbitmq-server is not installed (make install-deps installs it)")
            return
        }
        let broker = try await RabbitMQ.start()
        defer { broker.destroy() }
        let cli = try CLI()
        // Each node its own broker user, as the seed's compute nodes had their own credentials.
        for node in ["n1", "n2", "n3"] {
            #expect(try broker.ctl(["add_user", "node-\(node)", "secret-\(node)"]).status == 0)
            #expect(try broker.ctl(["set_permissions", "-p", "/", "node-\(node)", ".*", ".*", ".*"]).status == 0)
            try "secret-\(node)\n".write(toFile: "\(cli.workDirectory)/\(node).password", atomically: true, encoding: .utf8)
        }
        try "\(broker.password)\n".write(toFile: "\(cli.workDirectory)/controller.password", atomically: true, encoding: .utf8)
        let controllerArguments = [
            "--role", "controller", "--amqp", "amqp://\(broker.user)@127.0.0.1:\(broker.port)/", "--amqp-password-file", "\(cli.workDirectory)/controller.password",
            "--node-timeout", "3", "--api-port", "0", "--resync-interval", "5",
        ]
        var server = try Server(cli: cli, arguments: controllerArguments)
        defer { server.kill(SIGTERM) }
        var remote = cli
        remote.server = try await server.url(cli: cli)

        func agent(_ node: String, user: String? = nil) throws -> AgentProcess {
            let user = user ?? "node-\(node)"
            return try AgentProcess(cli: cli, arguments: [
                "--amqp", "amqp://\(user)@127.0.0.1:\(broker.port)/", "--amqp-password-file", "\(cli.workDirectory)/\(user.dropFirst("node-".count)).password",
                "--node", node, "--hypervisor", try privateNodeURI(memoryMB: 65536, cpus: 32), "--data-dir", "\(cli.workDirectory)/agent-\(node)", "--heartbeat-interval", "0.5",
            ])
        }
        var agents = ["n1": try agent("n1"), "n2": try agent("n2"), "n3": try agent("n3")]
        // n1's credentials claiming to be n9: the broker stamps the message as node-n1's, and the controller drops it.
        let impostor = try agent("n9", user: "node-n1")
        defer {
            for agent in agents.values { agent.kill(SIGTERM) }
            impostor.kill(SIGTERM)
        }
        let registered = try await Self.eventually(.seconds(30)) {
            let nodes = try await Self.nodes(remote)
            return ["n1", "n2", "n3"].allSatisfy { nodes[$0]?["phase"] as? String == "Ready" }
        }
        let afterRegistration = try await Self.nodes(remote)
        #expect(registered, "nodes: \(afterRegistration); controller log: \((try? String(contentsOfFile: server.log, encoding: .utf8)) ?? "")")
        let nodeStatus = try await Self.nodes(remote)
        let details = nodeStatus["n1"]?["details"] as? [String: Any]
        #expect(details?["lastHeartbeat"] != nil && details?["version"] as? String == "0.1.0" && details?["roles"] as? String == "compute", "\(details ?? [:])")
        #expect(nodeStatus["n9"] == nil, "an agent with node-n1's credentials registered n9")

        var manifest = Self.acme
        let names = (1...30).map { "vm-\($0)" }
        for (index, name) in names.enumerated() {
            // vm-2, vm-4, …: started again elsewhere when their node is lost.
            let policy = (index + 1) % 2 == 0 ? ", restartPolicy: reschedule" : ""
            manifest += "---\napiVersion: stratus/v1\nkind: Instance\nmetadata: {name: \(name), project: acme}\nspec: {image: debian, instanceType: m1.small\(policy)}\n"
        }
        try manifest.write(toFile: "\(cli.workDirectory)/vms.yaml", atomically: true, encoding: .utf8)
        let applied = try await remote.run("apply", "-f", "\(cli.workDirectory)/vms.yaml")
        #expect(applied.status == 0, "\(applied.stderr)")
        let running = try await Self.eventually(.seconds(60)) { try await Self.instances(remote).values.filter { $0.phase == "Running" }.count == names.count }
        let placed = try await Self.instances(remote)
        #expect(running, "\(placed.filter { $0.value.phase != "Running" }.prefix(5)); controller log: \((try? String(contentsOfFile: server.log, encoding: .utf8))?.suffix(3000) ?? "")")
        var perNode: [String: Int] = [:]
        for instance in placed.values { perNode[instance.node ?? "none", default: 0] += 1 }
        // The emptiest node takes each: 30 equal instances on three equal nodes are 10 each.
        #expect(perNode == ["n1": 10, "n2": 10, "n3": 10], "\(perNode)")

        // The console log is the node's: the controller asks the agent for it.
        let vm1 = try await remote.run("get", "instance", "vm-1", "-p", "acme", "-o", "json")
        let vm1Object = try JSONSerialization.jsonObject(with: Data(vm1.stdout.utf8)) as? [String: Any]
        let vm1Id = try #require((vm1Object?["metadata"] as? [String: Any])?["id"] as? String)
        let vm1Node = try #require(placed["vm-1"]?.node)
        let consoleDirectory = "\(cli.workDirectory)/agent-\(vm1Node)/instances/\(vm1Id)"
        try FileManager.default.createDirectory(atPath: consoleDirectory, withIntermediateDirectories: true)
        try "Debian GNU/Linux 12 vm-1 ttyS0\nvm-1 login: ".write(toFile: "\(consoleDirectory)/console.log", atomically: true, encoding: .utf8)
        let console = try await remote.run("console", "vm-1", "-p", "acme")
        #expect(console.status == 0 && console.stdout.contains("vm-1 login:"), "\(console.stdout)\(console.stderr)")

        // n2's agent stopped (SIGSTOP): after the 3 s node timeout its node is NotReady; its
        // instances that may move (the even ones) run on the other nodes, the rest say NodeLost.
        let onN2 = Set(placed.filter { $0.value.node == "n2" }.keys)
        let movable = Set(onN2.filter { Int($0.dropFirst("vm-".count))! % 2 == 0 })
        #expect(!movable.isEmpty && movable != onN2, "\(onN2)")
        kill(agents["n2"]!.process.processIdentifier, SIGSTOP)
        let lost = try await Self.eventually(.seconds(30)) {
            let nodes = try await Self.nodes(remote)
            let instances = try await Self.instances(remote)
            let ready = (nodes["n2"]?["conditions"] as? [[String: Any]])?.first { $0["type"] as? String == "Ready" }
            return nodes["n2"]?["phase"] as? String == "NotReady" && ready?["reason"] as? String == "NodeLost"
                && onN2.subtracting(movable).allSatisfy { instances[$0]?.reason == "NodeLost" && instances[$0]?.phase == "Unknown" }
                && movable.allSatisfy { instances[$0]?.phase == "Running" && instances[$0]?.node != "n2" }
        }
        let whileLost = try await Self.instances(remote)
        let n2WhileLost = try await Self.nodes(remote)["n2"] ?? [:]
        #expect(lost, "n2: \(n2WhileLost); instances: \(whileLost.filter { onN2.contains($0.key) })")
        #expect(whileLost.filter { !onN2.contains($0.key) }.values.allSatisfy { $0.phase == "Running" })

        // A new instance goes to a Ready node that is not cordoned: never to the lost one, and not to n3.
        let cordon = try await remote.run("cordon", "n3")
        #expect(cordon.status == 0 && cordon.stdout.contains("cordoned"), "\(cordon.stdout)\(cordon.stderr)")
        let extra = "apiVersion: stratus/v1\nkind: Instance\nmetadata: {name: vm-extra, project: acme}\nspec: {image: debian, instanceType: m1.small}\n"
        try extra.write(toFile: "\(cli.workDirectory)/extra.yaml", atomically: true, encoding: .utf8)
        let extraApplied = try await remote.run("apply", "-f", "\(cli.workDirectory)/extra.yaml")
        #expect(extraApplied.status == 0, "\(extraApplied.stderr)")
        let extraRunning = try await Self.eventually(.seconds(30)) { try await Self.instances(remote)["vm-extra"]?.phase == "Running" }
        let extraNode = try await Self.instances(remote)["vm-extra"]?.node
        #expect(extraRunning && extraNode == "n1", "vm-extra on \(extraNode ?? "no node")")
        let uncordon = try await remote.run("uncordon", "n3")
        #expect(uncordon.status == 0, "\(uncordon.stderr)")
        let n3Spec = try await remote.run("get", "node", "n3", "-o", "json")
        #expect(n3Spec.stdout.contains("\"cordoned\" : false") || n3Spec.stdout.contains("\"cordoned\": false"), "\(n3Spec.stdout)")

        // n2 resumes with its domains, the moved ones among them: those copies are removed, and
        // every instance runs exactly once, counted in every agent's hypervisor.
        kill(agents["n2"]!.process.processIdentifier, SIGCONT)
        var counted: [String: [String]] = [:]
        let once = try await Self.eventually(.seconds(60)) {
            let instances = try await Self.instances(remote)
            guard instances.count == names.count + 1, instances.values.allSatisfy({ $0.phase == "Running" }) else { return false }
            counted = [:]
            for node in ["n1", "n2", "n3"] { counted[node] = try await Self.domains(on: node, broker: broker) }
            let all = counted.values.flatMap { $0 }
            return all.count == instances.count && Set(all) == Set(instances.keys)
                && ["n1", "n2", "n3"].allSatisfy { node in Set(counted[node]!) == Set(instances.filter { $0.value.node == node }.keys) }
        }
        #expect(once, "domains per node: \(counted.mapValues { $0.sorted() }); agent log: \(agents["n2"]!.output.suffix(1500))")
        #expect(Set(counted["n2"] ?? []) == onN2.subtracting(movable), "n2 keeps only what stayed on it: \(counted["n2"] ?? [])")
        let reclaimed = ((try? String(contentsOfFile: server.log, encoding: .utf8)) ?? "").components(separatedBy: "removed a stale copy").count - 1
        #expect(reclaimed == movable.count, "the controller removed \(reclaimed) stale copies from n2, for \(movable.count) moved instances")

        // SIGKILL and a restart with an empty test driver: the controller converges n2's instances again.
        agents["n2"]!.kill(SIGKILL)
        agents["n2"] = try agents["n2"]!.restarted()
        let back = try await Self.eventually(.seconds(60)) {
            let nodes = try await Self.nodes(remote)
            let instances = try await Self.instances(remote)
            guard nodes["n2"]?["phase"] as? String == "Ready", onN2.subtracting(movable).allSatisfy({ instances[$0]?.phase == "Running" && instances[$0]?.node == "n2" }) else { return false }
            return Set(try await Self.domains(on: "n2", broker: broker)) == onN2.subtracting(movable)
        }
        let n2Back = try await Self.nodes(remote)["n2"] ?? [:]
        #expect(back, "n2: \(n2Back); agent log: \(agents["n2"]!.output.suffix(2000))")
        let n9 = try await Self.nodes(remote)["n9"]
        #expect(n9 == nil)
        // drain n1: cordoned; what may move runs elsewhere and leaves n1; the rest stays, with why (exit 1).
        let beforeDrain = try await Self.instances(remote)
        let onN1 = Set(beforeDrain.filter { $0.value.node == "n1" }.keys)
        let mayMove = Set(onN1.filter { Int($0.dropFirst("vm-".count)).map { $0 % 2 == 0 } ?? false })
        let drain = try await remote.run("drain", "n1", "-o", "json")
        let outcomes = (try? JSONSerialization.jsonObject(with: Data(drain.stdout.utf8)) as? [[String: Any]]) ?? []
        #expect(drain.status == 1, "exit \(drain.status): \(drain.stdout)\(drain.stderr)")
        #expect(Set(outcomes.filter { $0["moved"] as? Bool == true }.compactMap { ($0["instance"] as? String)?.replacingOccurrences(of: "acme/", with: "") }) == mayMove, "\(outcomes)")
        #expect(outcomes.filter { $0["moved"] as? Bool == false }.allSatisfy { ($0["reason"] as? String)?.contains("restartPolicy is stay") == true }, "\(outcomes)")
        let drained = try await Self.eventually(.seconds(60)) {
            let instances = try await Self.instances(remote)
            guard mayMove.allSatisfy({ instances[$0]?.phase == "Running" && instances[$0]?.node != "n1" }) else { return false }
            return Set(try await Self.domains(on: "n1", broker: broker)) == onN1.subtracting(mayMove)
        }
        let n1Nodes = try await Self.nodes(remote)["n1"]
        let afterDrain = try await Self.instances(remote).filter { mayMove.contains($0.key) }
        #expect(drained && (n1Nodes?["phase"] as? String) == "Ready", "after drain: \(afterDrain)")
        let n1Spec = try await remote.run("get", "node", "n1", "-o", "json")
        #expect(n1Spec.stdout.contains("\"cordoned\" : true") || n1Spec.stdout.contains("\"cordoned\": true"), "drain cordons: \(n1Spec.stdout)")

        // A call from a user other than the controller's is refused by the agent.
        let forged = try await Self.domains(on: "n1", broker: broker, user: "node-n3", password: "secret-n3")
        #expect(forged.isEmpty, "n1's agent answered node-n3's call: \(forged)")
        let controllerLog = (try? String(contentsOfFile: server.log, encoding: .utf8)) ?? ""
        #expect(controllerLog.contains("dropped a message for a node its sender may not speak for"), "the impostor's heartbeats were not reported as dropped")
        #expect(!controllerLog.contains(broker.password) && !agents["n1"]!.output.contains("secret-n1"), "a password reached a log")

        // The controller stops, and n3 dies while it is down: started again, the controller hears
        // nothing from n3, waits one node timeout for it and counts it lost; what may move runs on n2.
        let beforeRestart = try await Self.instances(remote)
        let onN3 = Set(beforeRestart.filter { $0.value.node == "n3" }.keys)
        let n3Movable = Set(onN3.filter { Int($0.dropFirst("vm-".count)).map { $0 % 2 == 0 } ?? false })
        server.kill(SIGTERM)
        agents["n3"]!.kill(SIGKILL)
        server = try Server(cli: cli, arguments: controllerArguments)
        remote.server = try await server.url(cli: cli)
        let n3Lost = try await Self.eventually(.seconds(60)) {
            let nodes = try await Self.nodes(remote)
            let instances = try await Self.instances(remote)
            let ready = (nodes["n3"]?["conditions"] as? [[String: Any]])?.first { $0["type"] as? String == "Ready" }
            return nodes["n3"]?["phase"] as? String == "NotReady" && ready?["reason"] as? String == "NodeLost"
                && n3Movable.allSatisfy { instances[$0]?.phase == "Running" && instances[$0]?.node == "n2" }
                && onN3.subtracting(n3Movable).allSatisfy { instances[$0]?.reason == "NodeLost" }
        }
        let n3AfterRestart = try await Self.nodes(remote)["n3"] ?? [:]
        let afterRestart = try await Self.instances(remote).filter { onN3.contains($0.key) }
        #expect(n3Lost, "n3 after a controller restart without it: \(n3AfterRestart); its instances: \(afterRestart)")
        #expect(((try? String(contentsOfFile: server.log, encoding: .utf8)) ?? "").contains("node agent silent; node lost"), "the restarted controller did not log n3 as lost")
    }

    @Test("agents whose broker users hold only what --print-broker-permissions prints register and run instances; the broker refuses node-n1 n2's queue, n2's keys and the controller's queue")
    func leastBrokerPermissions() async throws {
        guard RabbitMQ.isInstalled else {
            Issue.record("skipped: rabbitmq-server is not installed (make install-deps installs it)")
            return
        }
        let broker = try await RabbitMQ.start()
        defer { broker.destroy() }
        let cli = try CLI()
        // Nothing is printed that would break a node or the controller: another user, or hollow nodes.
        for arguments in [["--node", "n1", "--amqp", "amqp://stratus@127.0.0.1:5672/"], ["--node", "hollow", "--nodes", "3"]] {
            let refused = try await cli.run(["agent"] + arguments + ["--print-broker-permissions"])
            #expect(refused.status != 0 && refused.stdout.isEmpty && (refused.stderr.contains("must be node-n1") || refused.stderr.contains("controller's user")), "\(arguments): \(refused.stdout)\(refused.stderr)")
        }
        for node in ["n1", "n2"] {
            #expect(try broker.ctl(["add_user", "node-\(node)", "secret-\(node)"]).status == 0)
            try "secret-\(node)\n".write(toFile: "\(cli.workDirectory)/\(node).password", atomically: true, encoding: .utf8)
            // The printed commands, run as printed (single-quoted words, one command a line).
            let printed = try await cli.run("agent", "--node", node, "--amqp", "amqp://node-\(node)@127.0.0.1:\(broker.port)/", "--print-broker-permissions")
            #expect(printed.status == 0, "\(printed.stderr)")
            let commands = printed.stdout.split(separator: "\n").filter { $0.hasPrefix("rabbitmqctl set_") }
            #expect(commands.count == 2, "\(printed.stdout)")
            for command in commands {
                var words: [String] = []
                for (index, part) in command.split(separator: "'", omittingEmptySubsequences: false).enumerated() {
                    if index % 2 == 1 { words.append(String(part)) } else { words += part.split(separator: " ").map(String.init) }
                }
                let result = try broker.ctl(Array(words.dropFirst()))
                #expect(result.status == 0, "\(command): \(result.output)")
            }
        }
        try "\(broker.password)\n".write(toFile: "\(cli.workDirectory)/controller.password", atomically: true, encoding: .utf8)
        let server = try Server(cli: cli, arguments: [
            "--role", "controller", "--amqp", "amqp://\(broker.user)@127.0.0.1:\(broker.port)/", "--amqp-password-file", "\(cli.workDirectory)/controller.password",
            "--node-timeout", "10", "--api-port", "0", "--resync-interval", "5",
        ])
        defer { server.kill(SIGTERM) }
        var remote = cli
        remote.server = try await server.url(cli: cli)
        var agents: [AgentProcess] = []
        defer { for agent in agents { agent.kill(SIGTERM) } }
        for node in ["n1", "n2"] {
            agents.append(try AgentProcess(cli: cli, arguments: [
                "--amqp", "amqp://node-\(node)@127.0.0.1:\(broker.port)/", "--amqp-password-file", "\(cli.workDirectory)/\(node).password",
                "--node", node, "--hypervisor", try privateNodeURI(memoryMB: 16384, cpus: 8), "--data-dir", "\(cli.workDirectory)/agent-\(node)", "--heartbeat-interval", "0.5",
            ]))
        }
        var manifest = Self.acme
        for name in ["vm-1", "vm-2"] { manifest += "---\napiVersion: stratus/v1\nkind: Instance\nmetadata: {name: \(name), project: acme}\nspec: {image: debian, instanceType: m1.small}\n" }
        try manifest.write(toFile: "\(cli.workDirectory)/vms.yaml", atomically: true, encoding: .utf8)
        let ready = try await Self.eventually(.seconds(30)) {
            let nodes = try await Self.nodes(remote)
            return ["n1", "n2"].allSatisfy { nodes[$0]?["phase"] as? String == "Ready" }
        }
        #expect(ready, "agent logs: \(agents.map { $0.output.suffix(1500) })")
        #expect(try await remote.run("apply", "-f", "\(cli.workDirectory)/vms.yaml").status == 0)
        let running = try await Self.eventually(.seconds(30)) {
            let instances = try await Self.instances(remote)
            return instances.count == 2 && instances.values.allSatisfy { $0.phase == "Running" } && Set(instances.values.compactMap(\.node)) == ["n1", "n2"]
        }
        let placed = try await Self.instances(remote)
        #expect(running, "\(placed); agent logs: \(agents.map { $0.output.suffix(1500) })")
        // get nodes shows what each node's instances take (one m1.small each: 1 vCPU, 1024 MB).
        let table = try await remote.run("get", "nodes").stdout
        let rows = table.split(separator: "\n").filter { $0.hasPrefix("n1 ") || $0.hasPrefix("n2 ") }
        #expect(table.contains("ALLOCATED") && rows.count == 2 && rows.allSatisfy { $0.contains("1 inst, 1 vCPU, 1024 MB") }, "\(table)")

        // What node-n1 may not do, each on a fresh connection (a refusal closes the channel).
        let n1 = try AMQPURL(parsing: "amqp://node-n1:secret-n1@127.0.0.1:\(broker.port)/")
        func refused(_ what: String, _ attempt: (AMQPConnection) throws -> Void) {
            do {
                let connection = try AMQPConnection(url: n1)
                defer { connection.close() }
                try attempt(connection)
                Issue.record("the broker let node-n1 \(what)")
            } catch {
                #expect("\(error)".contains("ACCESS_REFUSED") || "\(error)".contains("closed the channel") || "\(error)".contains("403"), "node-n1 \(what): \(error)")
            }
        }
        refused("consume n2's calls") { try $0.consume(NodeWire.callQueue(node: "n2")) }
        refused("declare n2's queue") { _ = try $0.declareQueue(NodeWire.callQueue(node: "n2"), durable: true) }
        refused("bind its queue to n2's calls") { try $0.bind(queue: NodeWire.callQueue(node: "n1"), exchange: NodeWire.exchange, key: NodeWire.callKey(node: "n2")) }
        refused("consume the controller's queue") { try $0.consume(NodeWire.controllerQueue) }
        refused("send a heartbeat for n2") { connection in
            try connection.enableConfirms()
            try connection.publish(exchange: NodeWire.exchange, key: NodeWire.heartbeatKey(node: "n2"), body: Array("{}".utf8))
        }
        // And what it needs, on the same terms: its own heartbeat key is accepted.
        let allowed = try AMQPConnection(url: n1)
        defer { allowed.close() }
        try allowed.enableConfirms()
        try allowed.publish(exchange: NodeWire.exchange, key: NodeWire.heartbeatKey(node: "n1"), body: Array("{}".utf8))
    }

    @Test("an agent with its own data directory boots an s3:// image on real QEMU: the controller sends presigned GETs of its S3 API, the node caches the verified files, and no signature reaches a log")
    func remoteAgentFetchesImages() async throws {
        guard RabbitMQ.isInstalled else {
            Issue.record("skipped: rabbitmq-server is not installed (make install-deps installs it)")
            return
        }
        let tiny: TinyImage
        do {
            tiny = try await TinyImage.build().image
        } catch {
            Issue.record("skipped: the tiny image cannot be built on this machine, so no guest can boot: \(error)")
            return
        }
        let broker = try await RabbitMQ.start()
        defer { broker.destroy() }
        let cli = try CLI()
        let examples = try cli.copyExamples()
        try "\(broker.password)\n".write(toFile: "\(cli.workDirectory)/password", atomically: true, encoding: .utf8)
        let amqp = "amqp://\(broker.user)@127.0.0.1:\(broker.port)/"
        let server = try Server(cli: cli, arguments: [
            "--role", "controller", "--amqp", amqp, "--amqp-password-file", "\(cli.workDirectory)/password", "--api-port", "0",
            "--apply", "\(examples)/identity.yaml",
        ])
        defer { server.kill(SIGTERM) }
        var remote = cli
        remote.server = try await server.url(cli: cli)
        // The agent's node is "another host": its data directory is not the controller's, and
        // the object store's files are not where it looks.
        let agentData = "\(cli.workDirectory)/node-data"
        let libvirt = "\(cli.workDirectory)/node-libvirt"
        let uri = try EmbeddedQEMU.prepare(root: libvirt)
        let agent = try AgentProcess(cli: cli, arguments: [
            "--amqp", amqp, "--amqp-password-file", "\(cli.workDirectory)/password", "--node", "far", "--hypervisor", uri,
            "--data-dir", agentData, "--heartbeat-interval", "0.5",
        ])
        defer {
            agent.kill(SIGTERM)
            // QEMU of the embedded driver outlives the agent; its command line names the node's data directory.
            for pid in MakeRunTests.qemuProcesses(naming: agentData) { kill(pid, SIGKILL) }
            if let alias = EmbeddedQEMU.alias(of: libvirt) { try? FileManager.default.removeItem(atPath: alias) }
        }
        var environment = IdentityCLITests.exports(try await cli.run("credentials", "alice", "-p", "acme").stdout)
        environment["AWS_EC2_METADATA_DISABLED"] = "true"
        #expect(try await EC2ClientTests.run(["aws", "--endpoint-url", environment["S3_URL"]!, "--region", "nova", "s3", "mb", "s3://images"], environment: environment).status == 0)
        for (file, key) in [(tiny.disk, "disk.raw"), (tiny.kernel, "vmlinux"), (tiny.ramdisk, "initrd.cpio")] {
            let copied = try await EC2ClientTests.run(["aws", "--endpoint-url", environment["S3_URL"]!, "--region", "nova", "s3", "cp", file, "s3://images/\(key)"], environment: environment)
            #expect(copied.status == 0, "\(copied.output)")
        }
        try cli.write("far.yaml", """
            apiVersion: stratus/v1
            kind: Image
            metadata: {name: tiny-s3, project: acme}
            spec: {source: s3://images/disk.raw, format: raw, kernel: s3://images/vmlinux, ramdisk: s3://images/initrd.cpio, cmdline: "\(TinyImage.cmdline)"}
            ---
            apiVersion: stratus/v1
            kind: Instance
            metadata: {name: far-1, project: acme}
            spec: {image: tiny-s3, instanceType: m1.tiny}

            """)
        let applied = try await remote.run("apply", "-f", "\(cli.workDirectory)/far.yaml")
        #expect(applied.status == 0, "\(applied.stderr)")
        var console = ""
        let booted = try await Self.eventually(.seconds(120)) {
            let result = try await remote.run("console", "far-1", "-p", "acme")
            console = result.stdout
            return result.status == 0 && console.contains(TinyImage.banner) && console.contains("login:")
        }
        let instances = try await Self.instances(remote)
        let controllerLog = (try? String(contentsOfFile: server.log, encoding: .utf8)) ?? ""
        #expect(booted, "\(instances); agent log: \(agent.output.suffix(2000)); console: \(console.suffix(1000))")
        #expect(instances["far-1"]?.node == "far")
        // EC2's GetConsoleOutput asks the node too: the controller's data directory has no console.
        let described = try await remote.run("get", "instance", "far-1", "-p", "acme", "-o", "json")
        let object = try JSONSerialization.jsonObject(with: Data(described.stdout.utf8)) as? [String: Any]
        let id = try #require((object?["metadata"] as? [String: Any])?["id"] as? String)
        let output = try await EC2ClientTests.run(["aws", "--endpoint-url", environment["EC2_URL"]!, "--region", "nova", "ec2", "get-console-output", "--instance-id", id, "--query", "Output", "--output", "text"], environment: environment)
        #expect(output.status == 0 && output.output.contains(TinyImage.banner), "GetConsoleOutput: \(output.output.suffix(800))")
        let cached = (try? FileManager.default.contentsOfDirectory(atPath: "\(agentData)/images")) ?? []
        #expect(cached.filter { $0.count == 32 }.count == 3 && !cached.contains { $0.contains(".part-") || $0.contains(".curl-") }, "the disk, kernel and ramdisk are in the agent's cache, by MD5, nothing half-done: \(cached)")
        #expect(controllerLog.contains("node agents fetch s3:// images from"), "\(controllerLog.suffix(2000))")
        // Over HTTP from the S3 API, not from the controller's files: the agent says so for each.
        let fetched = agent.output.components(separatedBy: "\n").filter { $0.contains("image object fetched into the cache") }
        #expect(fetched.count == 3 && fetched.allSatisfy { $0.contains("http://127.0.0.1:") && $0.contains("/images/") }, "\(fetched)")
        for (name, text) in [("controller", controllerLog), ("agent", agent.output)] {
            #expect(!text.contains("X-Amz-Signature") && !text.contains("X-Amz-Credential"), "a presigned URL reached the \(name)'s log")
        }
    }

    @Test("RabbitMQ killed and started again in the middle of an apply: after reconnecting, every instance runs on exactly one agent; nothing lost, nothing twice")
    func brokerRestartMidApply() async throws {
        guard RabbitMQ.isInstalled else {
            Issue.record("skipped: rabbitmq-server is not installed (make install-deps installs it)")
            return
        }
        let broker = try await RabbitMQ.start()
        defer { broker.destroy() }
        let cli = try CLI()
        try "\(broker.password)\n".write(toFile: "\(cli.workDirectory)/password", atomically: true, encoding: .utf8)
        let amqp = "amqp://\(broker.user)@127.0.0.1:\(broker.port)/"
        // A node timeout longer than the broker's restart: the nodes stay Ready through it.
        let server = try Server(cli: cli, arguments: [
            "--role", "controller", "--amqp", amqp, "--amqp-password-file", "\(cli.workDirectory)/password", "--node-timeout", "60", "--api-port", "0", "--resync-interval", "5",
        ])
        defer { server.kill(SIGTERM) }
        var remote = cli
        remote.server = try await server.url(cli: cli)
        // One broker user for all: the shared account may speak for any node.
        var agents: [AgentProcess] = []
        for node in ["a1", "a2"] {
            agents.append(try AgentProcess(cli: cli, arguments: [
                "--amqp", amqp, "--amqp-password-file", "\(cli.workDirectory)/password", "--node", node, "--hypervisor", try privateNodeURI(memoryMB: 65536, cpus: 32),
                "--data-dir", "\(cli.workDirectory)/agent-\(node)", "--heartbeat-interval", "0.5",
            ]))
        }
        defer { for agent in agents { agent.kill(SIGTERM) } }
        let ready = try await Self.eventually(.seconds(30)) {
            let nodes = try await Self.nodes(remote)
            return ["a1", "a2"].allSatisfy { nodes[$0]?["phase"] as? String == "Ready" }
        }
        #expect(ready, "\((try? String(contentsOfFile: server.log, encoding: .utf8))?.suffix(2000) ?? "")")

        var manifest = Self.acme
        let names = (1...40).map { "vm-\($0)" }
        for name in names { manifest += "---\napiVersion: stratus/v1\nkind: Instance\nmetadata: {name: \(name), project: acme}\nspec: {image: debian, instanceType: m1.small}\n" }
        try manifest.write(toFile: "\(cli.workDirectory)/vms.yaml", atomically: true, encoding: .utf8)
        let applied = try await remote.run("apply", "-f", "\(cli.workDirectory)/vms.yaml")
        #expect(applied.status == 0, "\(applied.stderr)")
        broker.kill()
        try await broker.restart()

        var counted: [String: [String]] = [:]
        let converged = try await Self.eventually(.seconds(120)) {
            let instances = try await Self.instances(remote)
            guard instances.count == names.count, instances.values.allSatisfy({ $0.phase == "Running" }) else { return false }
            counted = [:]
            for node in ["a1", "a2"] { counted[node] = try await Self.domains(on: node, broker: broker) }
            let all = counted.values.flatMap { $0 }
            return all.count == names.count && Set(all) == Set(names)
                && ["a1", "a2"].allSatisfy { node in Set(counted[node]!) == Set(instances.filter { $0.value.node == node }.keys) }
        }
        let phases = try await Self.instances(remote).values.reduce(into: [String: Int]()) { $0[$1.phase, default: 0] += 1 }
        #expect(converged, "phases \(phases); domains \(counted.mapValues(\.count)); controller log: \((try? String(contentsOfFile: server.log, encoding: .utf8))?.suffix(2500) ?? "")")
    }
}
