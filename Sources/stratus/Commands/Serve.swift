import ArgumentParser
import Logging
import ServiceLifecycle
import StratusControl
import StratusModel
import StratusStore
import UnixSignals

extension Stratus {
    /// `stratus serve`: the controller (and, as they land, the APIs) in one process.
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the controller on the data directory until interrupted (SIGINT/SIGTERM).",
            discussion: """
                Applies the built-in catalog on first start, optionally applies --apply manifests, then follows
                the change feed and reconciles every resource. Stop it with Ctrl-C; it shuts down gracefully.

                Example: stratus serve --data-dir .stratus --apply examples/
                """
        )

        @OptionGroup var storeOptions: StoreOptions

        @Option(name: .customLong("apply"), help: ArgumentHelp("Manifests to apply at start (repeatable).", valueName: "path"))
        var applyPaths: [String] = []

        @Option(name: .customLong("set"), help: "The apply set for --apply.")
        var applySet = "default"

        @Option(help: "Log level: trace, debug, info, notice, warning, error.")
        var logLevel: Logger.Level = .info

        func run() async throws {
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = logLevel
                return handler
            }
            let logger = Logger(label: "stratus.serve")
            let store = try reportingErrors { try storeOptions.openStore() }
            let count = try store.count()
            logger.info("store open", metadata: ["stratus.dataDir": "\(storeOptions.resolvedDataDir)", "stratus.resources": "\(count)"])
            if !applyPaths.isEmpty {
                try reportingErrors {
                    let plan = try store.apply(try loadManifests(applyPaths, project: nil, cache: store), options: ApplyOptions(applySet: applySet))
                    let out = Terminal.standardOutput
                    ChangePrinter(out: out, paint: Paint(enabled: out.colors(.auto))).printApplied(plan, applySet: applySet, dryRun: false)
                    out.flush()
                }
            }
            let controller = Controller(store: store, reconcilers: [CatalogReconciler()], logger: Logger(label: "stratus.controller"))
            let group = ServiceGroup(configuration: .init(services: [.init(service: controller)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            logger.info("controller running; press Ctrl-C to stop")
            try await group.run()
            logger.info("stopped")
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
