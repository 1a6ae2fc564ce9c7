import ArgumentParser
import Logging
import Foundation
import ServiceLifecycle
import StratusAPI
import StratusCompute
import StratusControl
import StratusEC2
import StratusIdentity
import StratusModel
import StratusStore
import UnixSignals
import Yams

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

        @Option(help: "Port of the EC2 Query API; 0 picks a free one ($STRATUS_EC2_PORT; default 8773). Its URL is written to DATA/serve.json.")
        var ec2Port: Int?

        @Option(help: ArgumentHelp("Where the instance metadata service listens, e.g. 169.254.169.254:80 on a compute node ($STRATUS_METADATA_LISTEN; default: off).", valueName: "host:port"))
        var metadataListen: String?

        @Option(help: "Log level: trace, debug, info, notice, warning, error.")
        var logLevel: Logger.Level = .info

        @Option(help: ArgumentHelp("LDAP server the identity reconciler keeps equal to the users and projects, e.g. ldap://127.0.0.1:389 ($STRATUS_LDAP_URL). Without it identities live in the store only.", valueName: "url"))
        var ldapURL: String?

        @Option(help: ArgumentHelp("DN to bind to LDAP as ($STRATUS_LDAP_BIND_DN).", valueName: "dn"))
        var ldapBindDN: String?

        @Option(help: ArgumentHelp("File holding the bind password ($STRATUS_LDAP_PASSWORD_FILE); never pass it on the command line.", valueName: "file"))
        var ldapPasswordFile: String?

        @Option(help: ArgumentHelp("Suffix under which ou=Users and ou=Groups are kept, e.g. dc=example,dc=org ($STRATUS_LDAP_BASE).", valueName: "dn"))
        var ldapBase: String?

        @Option(help: ArgumentHelp("Seconds between resyncs, which put back what was changed by hand: LDAP entries are rewritten, instances are compared with libvirt in bulk and only drifted ones reconciled (every resource is reconciled at start and every 10 minutes) ($STRATUS_RESYNC_INTERVAL; default 30).", valueName: "seconds"))
        var resyncInterval: Int?

        @Option(help: ArgumentHelp("A YAML file of settings named like the flags (ldap-url: …, api-port: …); flags and STRATUS_… variables win ($STRATUS_CONFIG).", valueName: "file"))
        var config: String?

        /// A setting from the `STRATUS_…` environment variable, else the config file's key of the same name
        /// (`STRATUS_LDAP_URL` → `ldap-url`), when set and not empty.
        func setting(_ name: String) -> String? {
            if let value = ProcessInfo.processInfo.environment[name], !value.isEmpty { return value }
            let key = name.dropFirst("STRATUS_".count).lowercased().replacingOccurrences(of: "_", with: "-")
            return configValues[key]
        }

        /// The config file's settings (read once in `validate`).
        private var configValues: [String: String] = [:]

        enum CodingKeys: CodingKey {
            case storeOptions, applyPaths, applySet, hypervisor, domainType, nodeName, zone, listen, apiPort, ec2Port, metadataListen, logLevel
            case ldapURL, ldapBindDN, ldapPasswordFile, ldapBase, resyncInterval, config
        }

        mutating func validate() throws {
            guard let path = config ?? ProcessInfo.processInfo.environment["STRATUS_CONFIG"].flatMap({ $0.isEmpty ? nil : $0 }) else { return }
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("--config: cannot read \(path)") }
            do {
                guard let mapping = try Yams.load(yaml: text) as? [String: Any] else { throw ValidationError("--config \(path): expected a mapping of setting: value") }
                let known = ["hypervisor", "domain-type", "node-name", "zone", "listen", "api-port", "ec2-port", "metadata-listen", "ldap-url", "ldap-bind-dn", "ldap-password-file", "ldap-base", "resync-interval"]
                for (key, value) in mapping {
                    guard known.contains(key) else {
                        let hint = Suggestion.closest(to: key, in: known).map { " (did you mean \"\($0)\"?)" } ?? ""
                        throw ValidationError("--config \(path): unknown setting \"\(key)\"\(hint); known: \(known.joined(separator: ", "))")
                    }
                    configValues[key] = "\(value)"
                }
            } catch let error as ValidationError {
                throw error
            } catch {
                throw ValidationError("--config \(path): not valid YAML: \(error)")
            }
        }

        /// The LDAP directory when one is configured; nil keeps identities in the store.
        func directory(logger: Logger) throws -> (any Directory, String)? {
            guard let url = ldapURL ?? setting("STRATUS_LDAP_URL") else { return nil }
            guard let bindDN = ldapBindDN ?? setting("STRATUS_LDAP_BIND_DN"), let base = ldapBase ?? setting("STRATUS_LDAP_BASE") else {
                throw CLIError("--ldap-url needs --ldap-bind-dn and --ldap-base too")
            }
            var password = ""
            if let file = ldapPasswordFile ?? setting("STRATUS_LDAP_PASSWORD_FILE") {
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw CLIError("--ldap-password-file: cannot read \(file)") }
                password = text.trimmingCharacters(in: .newlines)
            }
            return (LDAPDirectory(LDAPConfiguration(url: url, bindDN: bindDN, password: password, base: base), logger: logger), base)
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
            let ldap = try reportingErrors { try directory(logger: Logger(label: "stratus.ldap")) }
            let identity = IdentityReconciler(store: store, directory: ldap?.0, base: ldap?.1 ?? "", logger: Logger(label: "stratus.identity"))
            if let ldapURL = ldapURL ?? setting("STRATUS_LDAP_URL") {
                logger.info("identities converge into LDAP", metadata: ["stratus.ldap.url": "\(ldapURL)", "stratus.ldap.base": "\(ldap?.1 ?? "")"])
            }
            // The administrator's key exists from the first start, so `stratus credentials admin` and --server work at once.
            _ = try reportingErrors { try store.credential(user: Store.rootUser) }
            let resync = resyncInterval ?? setting("STRATUS_RESYNC_INTERVAL").flatMap(Int.init) ?? 30
            let controller = Controller(
                store: store,
                reconcilers: [CatalogReconciler(), NodeReconciler(localNode: node, hypervisor: libvirt), compute, identity],
                logger: Logger(label: "stratus.controller"),
                resyncInterval: .seconds(max(1, resync))
            )
            let host = listen ?? setting("STRATUS_LISTEN") ?? "127.0.0.1"
            let port = apiPort ?? setting("STRATUS_API_PORT").flatMap(Int.init) ?? 8774
            let serveFile = ServeFile(path: (dataDirectory as NSString).appendingPathComponent("serve.json"), listen: host)
            let operations = ServeOperations(compute: compute, identity: identity)
            let api = ResourceAPI(store: store, dataDirectory: dataDirectory, node: operations).application(host: host, port: port, logger: Logger(label: "stratus.api")) { chosen in
                await serveFile.set(["apiURL": "http://\(host):\(chosen)", "apiPort": chosen])
                logger.info("resource API listening", metadata: ["stratus.url": "http://\(host):\(chosen)"])
            }
            let ec2Port = ec2Port ?? setting("STRATUS_EC2_PORT").flatMap(Int.init) ?? 8773
            let ec2Endpoint = ec2Port == 0 ? "" : "http://\(host):\(ec2Port)/services/Cloud"
            let ec2 = EC2API(store: store, dataDirectory: dataDirectory, node: operations, endpoint: ec2Endpoint)
                .application(host: host, port: ec2Port, logger: Logger(label: "stratus.ec2")) { chosen in
                    await serveFile.set(["ec2URL": "http://\(host):\(chosen)/services/Cloud", "ec2Port": chosen])
                    logger.info("EC2 API listening", metadata: ["stratus.url": "http://\(host):\(chosen)/services/Cloud"])
                }
            var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: controller), .init(service: api), .init(service: ec2)]
            if let metadata = metadataListen ?? setting("STRATUS_METADATA_LISTEN") {
                let parts = metadata.split(separator: ":")
                guard parts.count == 2, let metadataPort = Int(parts[1]) else {
                    Terminal.standardError.line("error: --metadata-listen: expected HOST:PORT like 169.254.169.254:80, got \"\(metadata)\"")
                    throw ExitCode.failure
                }
                let metadataHost = String(parts[0])
                services.append(.init(service: MetadataService(store: store).application(host: metadataHost, port: metadataPort, logger: Logger(label: "stratus.metadata")) { chosen in
                    await serveFile.set(["metadataURL": "http://\(metadataHost):\(chosen)"])
                    logger.info("metadata service listening", metadata: ["stratus.url": "http://\(metadataHost):\(chosen)"])
                }))
            }
            let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            logger.info("controller running; press Ctrl-C to stop")
            try await group.run()
            logger.info("stopped")
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Reboot and drift for the resource API, done by this node's compute and identity reconcilers.
struct ServeOperations: NodeOperations {
    let compute: ComputeReconciler
    let identity: IdentityReconciler

    func reboot(_ instance: StoredResource) async throws { try await compute.reboot(instance) }

    func drift() async throws -> [DriftFinding] { try await compute.drift() + identity.drift() }
}

/// `DATA/serve.json`: where this `serve` listens (API and EC2 URLs) and its PID, for the CLI and tests.
actor ServeFile {
    let path: String
    private var values: [String: any Sendable]

    init(path: String, listen: String) {
        self.path = path
        values = ["listen": listen, "pid": Int(ProcessInfo.processInfo.processIdentifier)]
    }

    func set(_ more: [String: any Sendable]) {
        values.merge(more) { _, new in new }
        let object = values.mapValues { $0 as Any }
        if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
            try? (String(decoding: data, as: UTF8.self) + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        }
    }
}
