import Foundation
import StratusMessaging
import StratusModel
import StratusStore
import StratusTestSupport

/// `stratus-bench agents --bin PATH [nodes] [instances]`: issue 16's scale figure with hollow
/// nodes (as kubemark does). A real RabbitMQ broker on loopback, `stratus serve --role
/// controller`, and one `stratus agent --nodes N` process hosting N test-driver nodes; then
/// `stratus apply` of the instances and the time until every one is Running, read from the
/// controller's store. Reports instances/s, the controller's peak RSS (VmHWM), the calls the
/// agents answered (two messages each, a request and its reply) and, as the ceiling, the
/// broker's rate for the same kind of publish (one publisher, each message confirmed) in the same run.
enum AgentsBench {
    static func run(_ arguments: [String]) async throws {
        var rest = arguments
        guard let flag = rest.firstIndex(of: "--bin"), flag + 1 < rest.count else { throw Failure("usage: stratus-bench agents --bin PATH [nodes] [instances]") }
        let binary = rest[flag + 1]
        rest.removeSubrange(flag...(flag + 1))
        let nodes = rest.first.flatMap(Int.init) ?? 100
        let count = rest.dropFirst().first.flatMap(Int.init) ?? 10_000
        guard RabbitMQ.isInstalled else { throw Failure("rabbitmq-server is not installed (make install-deps)") }

        let broker = try await RabbitMQ.start()
        defer { broker.destroy() }
        let ceiling = try await publishRate(broker: broker, messages: 5_000)

        let base = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-bench-agents-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        let data = "\(base)/controller"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: base)
        try "\(broker.password)\n".write(toFile: "\(base)/password", atomically: true, encoding: .utf8)
        let amqp = "amqp://\(broker.user)@127.0.0.1:\(broker.port)/"
        let controller = try spawn(binary, ["serve", "--role", "controller", "--amqp", amqp, "--amqp-password-file", "\(base)/password", "--data-dir", data,
                                            "--api-port", "0", "--ec2-port", "0", "--s3-port", "0", "--log-level", "warning"], log: "\(base)/controller.log")
        defer { stop(controller) }
        let agent = try spawn(binary, ["agent", "--amqp", amqp, "--amqp-password-file", "\(base)/password", "--node", "hollow", "--nodes", "\(nodes)",
                                       "--hypervisor", "test", "--node-capacity", "cpus=64,memory=256Gi", "--data-dir", "\(base)/agent", "--log-level", "info"],
                              log: "\(base)/agent.log")
        defer { stop(agent) }

        // The nodes register with their first heartbeats.
        let store = try await openStore(data)
        let registered = ContinuousClock.now + .seconds(120)
        while try store.list(kind: .node).filter({ $0.resource.status?.phase == "Ready" }).count < nodes {
            guard ContinuousClock.now < registered, controller.isRunning, agent.isRunning else {
                throw Failure("only \(try store.list(kind: .node).count) of \(nodes) nodes registered: \(tail("\(base)/controller.log")) \(tail("\(base)/agent.log"))")
            }
            try await Task.sleep(for: .milliseconds(100))
        }

        var text = "apiVersion: stratus/v1\nkind: User\nmetadata: {name: bench}\nspec: {}\n---\napiVersion: stratus/v1\nkind: Project\nmetadata: {name: bench}\nspec: {manager: bench, quotas: {instances: 1000000, cores: 1000000, ram: 1000000000}}\n---\napiVersion: stratus/v1\nkind: Image\nmetadata: {name: img, project: bench}\nspec: {source: /images/x.qcow2}\n"
        for index in 0..<count {
            text += "---\napiVersion: stratus/v1\nkind: Instance\nmetadata: {name: vm-\(index), project: bench}\nspec: {image: img, instanceType: m1.tiny}\n"
        }
        try text.write(toFile: "\(base)/instances.yaml", atomically: true, encoding: .utf8)
        let start = ContinuousClock.now
        let apply = try spawn(binary, ["apply", "-f", "\(base)/instances.yaml", "--data-dir", data], log: "\(base)/apply.log")
        apply.waitUntilExit()
        guard apply.terminationStatus == 0 else { throw Failure("apply failed: \(tail("\(base)/apply.log"))") }
        let applied = ContinuousClock.now - start
        var running = 0
        var lastProgress = ContinuousClock.now
        while true {
            running = try store.phaseCounts(kind: .instance)["Running", default: 0]
            if running >= count { break }
            guard ContinuousClock.now - start < .seconds(900), controller.isRunning, agent.isRunning else {
                throw Failure("\(running) of \(count) Running after \(ContinuousClock.now - start): \(tail("\(base)/controller.log"))")
            }
            if ContinuousClock.now - lastProgress > .seconds(5) {
                FileHandle.standardError.write(Data("agents bench: \(running)/\(count) Running after \(Int((ContinuousClock.now - start).seconds)) s\n".utf8))
                lastProgress = .now
            }
            // Each look counts 10,000 rows: every 100 ms keeps the bench's own load small.
            try await Task.sleep(for: .milliseconds(100))
        }
        let wall = (ContinuousClock.now - start).seconds
        let peak = peakRSS(controller.processIdentifier)
        stop(agent)
        let calls = answeredCalls("\(base)/agent.log")
        let rate = Double(count) / wall
        let report = """
            | measurement (\(nodes) hollow nodes in one agent, \(count) instances, m1.tiny) | result | target |
            |---|---|---|
            | apply → all Running through RabbitMQ | \(String(format: "%.1f", wall)) s (the apply itself \(String(format: "%.1f", applied.seconds)) s) | < 30 s |
            | instances/s | \(Int(rate)) | ≥ 330 |
            | controller peak RSS (VmHWM) | \(peak / 1024) MB | < 300 MB |
            | calls the agents answered (×2 messages: request, reply) | \(calls.map(String.init) ?? "?") (\(calls.map { String(Int(Double($0 * 2) / wall)) } ?? "?") messages/s) | — |
            | the broker's ceiling: one publisher, each message confirmed (same run) | \(Int(ceiling)) messages/s | — |

            """
        FileHandle.standardOutput.write(Data(report.utf8))
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    static func spawn(_ binary: String, _ arguments: [String], log: String) throws -> Process {
        FileManager.default.createFile(atPath: log, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    static func stop(_ process: Process) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// The controller's store, once `serve` has made it.
    static func openStore(_ directory: String) async throws -> Store {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            if FileManager.default.fileExists(atPath: "\(directory)/serve.json"), let store = try? Store(dataDirectory: directory) { return store }
            guard ContinuousClock.now < deadline else { throw Failure("the controller made no store in \(directory)") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Confirmed publishes, one after another, of 200-byte messages into a classic queue.
    static func publishRate(broker: RabbitMQ, messages: Int) async throws -> Double {
        let url = try AMQPURL(parsing: broker.url)
        let queue = "stratus-bench-ceiling"
        let publisher = AMQPPublisher(url: url) { connection throws(AMQPError) in _ = try connection.declareQueue(queue, durable: false) }
        defer { publisher.close() }
        let body = [UInt8](repeating: 0x61, count: 200)
        try await publisher.publish(exchange: "", key: queue, body: body, persistent: false)
        let start = ContinuousClock.now
        for _ in 0..<messages { try await publisher.publish(exchange: "", key: queue, body: body, persistent: false) }
        return Double(messages) / (ContinuousClock.now - start).seconds
    }

    static func peakRSS(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return 0 }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0
    }

    /// What the agent logged at its graceful stop: `answered N calls`.
    static func answeredCalls(_ log: String) -> Int? {
        guard let text = try? String(contentsOfFile: log, encoding: .utf8), let range = text.range(of: "answered ", options: .backwards) else { return nil }
        return Int(text[range.upperBound...].prefix { $0.isNumber })
    }

    static func tail(_ path: String) -> String { String(((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").suffix(1500)) }
}
