import Foundation

/// A real RabbitMQ broker for a test (RECIPES §6): its own epmd, free loopback ports, its own
/// data directory, no systemd and no /etc/rabbitmq; stopped (and epmd killed) by PID.
public final class RabbitMQ: @unchecked Sendable {  // mutable state is touched by one test at a time
    public static let sbin = "/usr/lib/rabbitmq/lib/rabbitmq_server-3.10.8/sbin"
    public let directory: String
    public let port: Int
    let distributionPort: Int
    let epmdPort: Int
    private var server: Process?
    private var epmd: Process?
    /// The administrator user the broker is made with (`rabbitmqctl add_user`).
    public let user = "stratus"
    public let password = "stratus-test-secret"
    public var url: String { "amqp://\(user):\(password)@127.0.0.1:\(port)/" }

    /// Whether rabbitmq-server is installed (make install-deps installs it).
    public static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: "\(sbin)/rabbitmq-server") }

    /// Starts a broker and waits until it takes connections (about 5–15 s here), off the cooperative pool.
    ///
    /// With `untilExit`, a watchdog (a shell of its own session) kills the broker and epmd by PID
    /// and removes its files once this test process is gone: for a broker a whole suite shares,
    /// which no single test can stop.
    public static func start(untilExit: Bool = false) async throws -> RabbitMQ {
        let broker = try RabbitMQ()
        do {
            try await offPool { try broker.startBlocking(watching: untilExit) }
        } catch {
            broker.destroy()
            throw error
        }
        return broker
    }

    private func watch() throws {
        let watchdog = Process()
        watchdog.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
        // The broker's group is read from a file each time, as a restart makes a new one.
        try "\(server?.processIdentifier ?? 0)".write(toFile: "\(directory)/group", atomically: true, encoding: .utf8)
        // bash, not sh: dash's kill takes no process group.
        watchdog.arguments = ["/bin/bash", "-c", "while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done; group=$(cat \"$1/group\"); kill -9 -- -$group $group 2>/dev/null; "
                              + "kill -9 $(cat \"$1/rabbit.pid\" 2>/dev/null) \(epmd?.processIdentifier ?? 0) 2>/dev/null; rm -rf \"$1\"", "watchdog", directory]
        watchdog.standardOutput = FileHandle.nullDevice
        watchdog.standardError = FileHandle.nullDevice
        try watchdog.run()
    }

    private init() throws {
        directory = NSTemporaryDirectory() + "stratus-rabbitmq-\(UUID().uuidString.prefix(8))"
        port = try freePort()
        distributionPort = try freePort()
        epmdPort = try freePort()
        for sub in ["home", "mnesia", "log"] { try FileManager.default.createDirectory(atPath: "\(directory)/\(sub)", withIntermediateDirectories: true) }
        try "".write(toFile: "\(directory)/rabbitmq-env.conf", atomically: true, encoding: .utf8)
        try "[].\n".write(toFile: "\(directory)/enabled_plugins", atomically: true, encoding: .utf8)
        try """
            loopback_users = none
            listeners.tcp.default = 127.0.0.1:\(port)
            log.console = false
            log.file.level = warning

            """.write(toFile: "\(directory)/rabbitmq.conf", atomically: true, encoding: .utf8)
    }

    var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        let own: [String: String] = [
            "HOME": "\(directory)/home", "RABBITMQ_CONF_ENV_FILE": "\(directory)/rabbitmq-env.conf",
            "RABBITMQ_NODENAME": "stratus-test-\(port)@localhost", "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1", "RABBITMQ_NODE_PORT": "\(port)",
            "RABBITMQ_DIST_PORT": "\(distributionPort)", "ERL_EPMD_ADDRESS": "127.0.0.1", "ERL_EPMD_PORT": "\(epmdPort)",
            "RABBITMQ_MNESIA_BASE": "\(directory)/mnesia", "RABBITMQ_LOG_BASE": "\(directory)/log", "RABBITMQ_CONFIG_FILE": "\(directory)/rabbitmq",
            "RABBITMQ_ENABLED_PLUGINS_FILE": "\(directory)/enabled_plugins", "RABBITMQ_PID_FILE": "\(directory)/rabbit.pid",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        ]
        environment.merge(own) { _, new in new }
        return environment
    }

    private func startBlocking(watching: Bool = false) throws {
        if epmd == nil {
            let epmd = Process()
            epmd.executableURL = URL(fileURLWithPath: "/usr/bin/epmd")
            epmd.arguments = ["-address", "127.0.0.1", "-port", "\(epmdPort)"]
            epmd.environment = environment
            epmd.standardOutput = FileHandle.nullDevice
            epmd.standardError = FileHandle.nullDevice
            try epmd.run()
            self.epmd = epmd
        }
        // Foundation starts it in a process group of its own: the script, the Erlang VM and its
        // helpers are stopped together by that group (the VM is the script's child, not the script).
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "\(Self.sbin)/rabbitmq-server")
        server.environment = environment
        server.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        server.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try server.run()
        self.server = server
        try? "\(server.processIdentifier)".write(toFile: "\(directory)/group", atomically: true, encoding: .utf8)
        if watching { try watch() }
        // await_startup fails at once while the node has not registered with epmd yet: asked again until it answers.
        let deadline = Date().addingTimeInterval(90)
        var started = try ctl(["-q", "await_startup", "--timeout", "90"])
        while started.status != 0, Date() < deadline, server.isRunning || brokerPID != nil {
            Thread.sleep(forTimeInterval: 0.5)
            started = try ctl(["-q", "await_startup", "--timeout", "90"])
        }
        guard started.status == 0 else { throw TestSupportError("rabbitmq-server did not start on port \(port) within 90 s: \(started.output.prefix(600))") }
        if !FileManager.default.fileExists(atPath: "\(directory)/user-made") {
            for arguments in [["add_user", user, password], ["set_user_tags", user, "administrator"], ["set_permissions", "-p", "/", user, ".*", ".*", ".*"]] {
                let done = try ctl(["-q"] + arguments)
                guard done.status == 0 else { throw TestSupportError("rabbitmqctl \(arguments.first ?? ""): \(done.output)") }
            }
            FileManager.default.createFile(atPath: "\(directory)/user-made", contents: nil)
        }
    }

    /// The end of the broker's log, for a failure's message.
    public func logTail(_ characters: Int = 3000) -> String {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: "\(directory)/log")) ?? []
        return files.sorted().compactMap { try? String(contentsOfFile: "\(directory)/log/\($0)", encoding: .utf8) }.joined(separator: "\n").suffix(characters).description
    }

    /// Starts the broker again on the same port and data (after `stop`).
    public func restart() async throws { try await offPool { try self.startBlocking() } }

    /// Runs rabbitmqctl against this broker.
    public func ctl(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try runTool("\(Self.sbin)/rabbitmqctl", arguments, environment: environment)
    }

    /// The broker's Erlang VM: the process the PID file names.
    var brokerPID: Int32? {
        (try? String(contentsOfFile: "\(directory)/rabbit.pid", encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Kills the broker at once (SIGKILL, as a crash), keeping its data.
    public func kill() {
        if let server {
            Foundation.kill(-server.processIdentifier, SIGKILL)
            Foundation.kill(server.processIdentifier, SIGKILL)
        }
        if let pid = brokerPID { Foundation.kill(pid, SIGKILL) }
        server?.waitUntilExit()
        server = nil
        try? FileManager.default.removeItem(atPath: "\(directory)/rabbit.pid")
    }

    /// Stops the broker, its epmd, and removes its files.
    public func destroy() {
        kill()
        if let epmd, epmd.isRunning {
            Foundation.kill(epmd.processIdentifier, SIGKILL)
            epmd.waitUntilExit()
        }
        epmd = nil
        try? FileManager.default.removeItem(atPath: directory)
    }
}
