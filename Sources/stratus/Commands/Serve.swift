import ArgumentParser
import Logging
import Foundation
import ServiceLifecycle
import StratusAPI
import StratusCompute
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

        @Option(help: ArgumentHelp("libvirt URI of this node: test:///default (default), qemu:///system, or 'embed' for QEMU without a daemon under DATA/libvirt ($STRATUS_HYPERVISOR).", valueName: "uri"))
        var hypervisor: String?

        @Option(help: "Domain type for new domains: kvm or qemu (TCG) ($STRATUS_DOMAIN_TYPE). Default: kvm when /dev/kvm really works.")
        var domainType: String?

        @Option(help: "This node's name ($STRATUS_NODE_NAME; default: the host name).")
        var nodeName: String?

        @Option(help: "This node's availability zone ($STRATUS_ZONE; default nova).")
        var zone: String?

        @Option(help: "Address the resource API listens on ($STRATUS_LISTEN). Keep 127.0.0.1 until requests are signed.")
        var listen: String?

        @Option(help: "Port of the resource API; 0 picks a free one ($STRATUS_API_PORT). The chosen port is written to DATA/serve.json.")
        var apiPort: Int?

        @Option(help: "Log level: trace, debug, info, notice, warning, error.")
        var logLevel: Logger.Level = .info

        /// A `STRATUS_…` environment variable, when set and not empty.
        func setting(_ name: String) -> String? {
            ProcessInfo.processInfo.environment[name].flatMap { $0.isEmpty ? nil : $0 }
        }

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
            let dataDirectory = storeOptions.resolvedDataDir
            var uri = hypervisor ?? setting("STRATUS_HYPERVISOR") ?? "test:///default"
            if uri == "embed" { uri = try EmbeddedQEMU.prepare(root: (dataDirectory as NSString).appendingPathComponent("libvirt")) }
            let libvirt: LibvirtHypervisor
            do {
                libvirt = try LibvirtHypervisor(uri: uri, domainType: domainType ?? setting("STRATUS_DOMAIN_TYPE"), logger: Logger(label: "stratus.libvirt"))
            } catch {
                Terminal.standardError.line("error: \(error)")
                throw ExitCode.failure
            }
            let node = nodeName ?? setting("STRATUS_NODE_NAME") ?? ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init)?.lowercased() ?? "localhost"
            try reportingErrors { try NodeReconciler.register(node, zone: zone ?? setting("STRATUS_ZONE") ?? NodeSpec.defaultZone, in: store) }
            logger.info("node registered", metadata: ["stratus.node": "\(node)", "stratus.hypervisor": "\(uri)", "stratus.domainType": "\(libvirt.domainType)"])
            let compute = ComputeReconciler(store: store, hypervisor: libvirt, scheduler: Scheduler(store: store), localNode: node, dataDirectory: dataDirectory)
            let controller = Controller(
                store: store,
                reconcilers: [CatalogReconciler(), NodeReconciler(localNode: node, hypervisor: libvirt), compute],
                logger: Logger(label: "stratus.controller")
            )
            let host = listen ?? setting("STRATUS_LISTEN") ?? "127.0.0.1"
            let port = apiPort ?? setting("STRATUS_API_PORT").flatMap(Int.init) ?? 8774
            let serveFile = (dataDirectory as NSString).appendingPathComponent("serve.json")
            let api = ResourceAPI(store: store, dataDirectory: dataDirectory, node: ServeOperations(compute: compute)).application(host: host, port: port, logger: Logger(label: "stratus.api")) { chosen in
                let info = "{\"apiURL\":\"http://\(host):\(chosen)\",\"listen\":\"\(host)\",\"apiPort\":\(chosen),\"pid\":\(ProcessInfo.processInfo.processIdentifier)}\n"
                try? info.write(toFile: serveFile, atomically: true, encoding: .utf8)
                logger.info("resource API listening", metadata: ["stratus.url": "http://\(host):\(chosen)"])
            }
            let group = ServiceGroup(
                configuration: .init(services: [.init(service: controller), .init(service: api)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            )
            logger.info("controller running; press Ctrl-C to stop")
            try await group.run()
            logger.info("stopped")
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Reboot and drift for the resource API, done by this node's compute reconciler.
struct ServeOperations: NodeOperations {
    let compute: ComputeReconciler

    func reboot(_ instance: StoredResource) async throws { try await compute.reboot(instance) }

    func drift() async throws -> [DriftFinding] { try await compute.drift() }
}
