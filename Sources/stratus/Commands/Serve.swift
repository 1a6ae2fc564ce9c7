import ArgumentParser
import Foundation
import Logging
import StratusServer
import StratusTelemetry

extension Stratus {
    /// `stratus serve`: the controller, this node and the APIs in one process.
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the controller, this node and the APIs on the data directory until interrupted (SIGINT/SIGTERM).",
            discussion: """
                Applies the built-in catalog on first start, optionally applies --apply manifests, then follows \
                the change feed and reconciles every resource. Stop it with Ctrl-C; it shuts down gracefully.

                Every setting below is also read from its STRATUS_… variable and from a YAML file given with \
                --config FILE (or STRATUS_CONFIG) holding the same names (api-port: 8774); a flag wins over the \
                variable, the variable over the file. Unknown names are refused. --print-config shows the result.

                Settings:
                \(ServerConfiguration.helpText)

                Once the APIs listen it prints three commands to try next, for an instance of --apply.

                Examples:
                  # what make run starts
                  stratus serve --data-dir .stratus --hypervisor embed --apply examples/
                  # simulated guests, on the capacity given
                  stratus serve --hypervisor test --node-capacity cpus=64,memory=256Gi
                  stratus serve --config /etc/stratus/serve.yaml --print-config
                """
        )

        @Flag(help: "Print the effective settings (and where each came from), secrets redacted, and exit.")
        var printConfig = false

        @Argument(parsing: .allUnrecognized, help: ArgumentHelp("Settings as --name value (listed below).", valueName: "settings"))
        var settings: [String] = []

        func run() async throws {
            let configuration = try reportingErrors {
                try ServerConfiguration.resolve(arguments: settings, environment: ProcessInfo.processInfo.environment)
            }
            if printConfig {
                Terminal.standardOutput.line(configuration.rendered())
                return
            }
            configuration.logFormat.bootstrap(level: configuration.logLevel)
            let logger = Logger(label: "stratus.serve")
            let server = try await reportingErrors {
                try await StratusServer.build(configuration, logger: logger, manifestCacheSalt: FileOptions.parserIdentity)
            }
            if let plan = server.initialApply {
                let out = Terminal.standardOutput
                ChangePrinter(out: out, paint: Paint(enabled: out.colors(.auto))).printApplied(plan, applySet: configuration.applySet, dryRun: false)
                out.flush()
            }
            logger.info("controller running; press Ctrl-C to stop")
            // Once every listener is up, what to try next (on stdout, after the log lines of start-up).
            let nextSteps = Task {
                let info = await server.endpoints.listening()
                let out = Terminal.standardOutput
                for line in NextSteps.lines(server: server, info: info, command: CommandLine.arguments.first ?? "stratus") { out.line(line) }
                out.flush()
            }
            defer { nextSteps.cancel() }
            try await server.run(logger: logger)
            logger.info("stopped")
        }
    }
}
