import Foundation
import Logging
import ServiceLifecycle
import StratusAPI
import StratusAccess
import StratusAgent
import StratusCompute
import StratusControl
import StratusEC2
import StratusIdentity
import StratusMessaging
import StratusModel
import StratusNetwork
import StratusNode
import StratusObjectStore
import StratusStorage
import StratusStore
import StratusTelemetry
import UnixSignals

/// A `stratus serve` assembled from its configuration: the store, the controller, this node and
/// the APIs, each a `Service`, ready to run in one `ServiceGroup`.
///
/// The command line only parses and prints; tests build the same thing in-process.
public struct StratusServer: Sendable {
    public let configuration: ServerConfiguration
    public let store: Store
    /// What `--apply` changed at start, for the caller to show.
    public let initialApply: ApplyPlan?
    /// The services, in start order: controller first, then the listeners.
    public let services: [any Service]
    /// Where the listeners bound (port 0 picks one); also written to `DATA/serve.json`.
    public let endpoints: ServeInfoRecorder
    /// The node name this process converges (empty for a controller, whose nodes are agents).
    public let node: String
    /// The embedded QEMU driver, whose guests are this process's and stop with it.
    let embeddedHypervisor: LibvirtHypervisor?
    /// This node's volume exports, which stop with it (the next start exports them again).
    let export: (any BlockExport)?
    /// With `--role controller`: the broker transport to the node agents, closed at the end.
    let remote: AMQPTransport?

    /// Opens the store, applies `--apply`, connects this node's drivers and builds every service.
    ///
    /// - Parameter manifestCacheSalt: identifies the parser build for the parse cache (the CLI
    ///   passes its executable's identity); nil parses `--apply` files without the cache.
    public static func build(_ configuration: ServerConfiguration, logger: Logger, manifestCacheSalt: String? = nil) async throws -> StratusServer {
        let dataDirectory = configuration.dataDir
        let store: Store
        do {
            store = try Store(dataDirectory: dataDirectory)
        } catch {
            throw ConfigurationError("data-dir: cannot open the store in \(dataDirectory): \(error)")
        }
        let count = try store.count()
        let telemetry = Telemetry()
        store.instrument(telemetry)
        CloudCensus(store: store, telemetry: telemetry).install()
        var metricsToken: String?
        if let file = configuration.metricsTokenFile {
            do { metricsToken = try MetricsEndpoint.token(file: file) } catch { throw ConfigurationError("\(error)") }
        }
        logger.info("store open", metadata: ["stratus.dataDir": "\(dataDirectory)", "stratus.resources": "\(count)"])
        var initialApply: ApplyPlan?
        if !configuration.apply.isEmpty {
            let sources = try ManifestLoader.sources(for: configuration.apply)
            if sources.isEmpty { throw ConfigurationError("apply: no manifests found in \(configuration.apply.joined(separator: ", ")) (*.yaml, *.yml, *.json)") }
            let documents = try ManifestLoader.load(sources, defaultProject: nil, cache: manifestCacheSalt == nil ? nil : store, cacheSalt: manifestCacheSalt ?? "")
            initialApply = try store.apply(documents, options: ApplyOptions(applySet: configuration.applySet))
        }

        let transport: any NodeTransport
        var libvirt: LibvirtHypervisor?
        var remote: AMQPTransport?
        let node: String
        if configuration.role == .controller, let amqp = configuration.amqp {
            // The nodes are agents on other hosts (or processes), reached through the broker; they register themselves.
            let url: AMQPURL
            do { url = try AMQPURL(parsing: amqp, passwordFile: configuration.amqpPasswordFile) } catch { throw ConfigurationError("amqp: \(error)") }
            let wire = AMQPTransport(url: url, nodeTimeout: .seconds(configuration.nodeTimeout), logger: Logger(label: "stratus.amqp"))
            logger.info("node agents are reached through the broker", metadata: ["stratus.amqp": "\(url)", "stratus.nodeTimeout": "\(configuration.nodeTimeout) s"])
            // A node that died while this controller was down sends nothing: it is waited for once, then lost.
            wire.expect(try store.list(kind: .node).map(\.key.name))
            remote = wire
            transport = wire
            node = ""
        } else {
            var uri = configuration.hypervisor
            if uri == "embed" { uri = try EmbeddedQEMU.prepare(root: (dataDirectory as NSString).appendingPathComponent("libvirt")) }
            if uri == "test" { uri = "test:///default" }
            let hypervisor = try LibvirtHypervisor(uri: uri, domainType: configuration.domainType, logger: Logger(label: "stratus.libvirt"))
            libvirt = hypervisor
            node = configuration.nodeName ?? Self.hostNodeName()
            try NodeReconciler.register(node, zone: configuration.zone, in: store)
            logger.info("node registered", metadata: ["stratus.node": "\(node)", "stratus.hypervisor": "\(uri)", "stratus.domainType": "\(hypervisor.domainType)"])
            // This process is also the node: its agent is reached in-process.
            transport = InProcessTransport.local(
                node: node, zone: configuration.zone, hypervisor: hypervisor, dataDirectory: dataDirectory, capacity: configuration.nodeCapacity
            )
        }
        let locator = ObjectLocator(store: store, dataDirectory: dataDirectory)
        // Agents may be other hosts: they get image objects as presigned GETs of the S3 API, not paths.
        let region = configuration.region
        let remoteObjects: RemoteObjects? = remote.map { _ in
            RemoteObjects(signer: {
                let admin = try store.credential(user: Store.rootUser)
                return RequestSigner(accessKey: admin.accessKey, secretKey: admin.secretKey, region: region, service: "s3")
            }, endpoint: configuration.objectURL.flatMap(URL.init(string:)))
        }
        let compute = ComputeReconciler(store: store, transport: transport, scheduler: Scheduler(store: store),
                                        locator: ObjectLocator(store: store, dataDirectory: dataDirectory, remote: remoteObjects), networksManaged: configuration.hostNetwork == "on")
        let directory = try Self.directory(configuration)
        let identity = IdentityReconciler(store: store, directory: directory, base: configuration.ldapBase ?? "", logger: Logger(label: "stratus.identity"))
        if let url = configuration.ldapURL {
            logger.info("identities converge into LDAP", metadata: ["stratus.ldap.url": "\(url)", "stratus.ldap.base": "\(configuration.ldapBase ?? "")"])
        }
        guard case .success(let publicRange) = IPv4Network.parse(configuration.publicRange) else { throw ConfigurationError("public-range: \(configuration.publicRange) is not a CIDR") }
        // With host networking guests reach the metadata service at 169.254.169.254 (DNATed to
        // its listener, on loopback unless --metadata-listen says otherwise).
        var metadataListen = configuration.metadataListen
        if configuration.hostNetwork == "on", metadataListen == nil { metadataListen = "127.0.0.1:8775" }
        let network = try Self.networkReconciler(configuration, store: store, dataDirectory: dataDirectory, node: node, metadata: metadataListen)
        // The administrator's key exists from the first start, so `stratus credentials admin` and --server work at once.
        _ = try store.credential(user: Store.rootUser)
        let storage = try Self.storage(configuration, dataDirectory: dataDirectory)
        if let storage { logger.info("volumes are exported over AoE", metadata: ["stratus.aoe.interface": "\(storage.export.interface)", "stratus.aoe.check": "\(storage.check.interface)"]) }
        // A controller's own kernel is not a node's: what agents report stands alone.
        var nodeNetwork: (@Sendable () async -> [String: String])?
        if remote == nil { nodeNetwork = { @Sendable in await network.nodeDetails() } }
        let nodes = NodeReconciler(transport: transport, network: nodeNetwork, registry: remote == nil ? nil : store)
        let gitSync = GitSyncReconciler(store: store, directory: (dataDirectory as NSString).appendingPathComponent("git"))
        let controller = Controller(
            store: store,
            reconcilers: [CatalogReconciler(), nodes, compute, identity, ImageReconciler(locator: locator), network, gitSync,
                          AddressReconciler(store: store, publicRange: publicRange, firewall: network.host?.firewall),
                          VolumeReconciler(store: store, storage: storage, node: node), SnapshotReconciler(store: store, export: storage?.export)],
            logger: Logger(label: "stratus.controller"),
            resyncInterval: .seconds(configuration.resyncInterval),
            telemetry: telemetry
        )
        // The node's capacity is in its status before the controller places anything: otherwise
        // the first reconcile of each instance could run before the node's and find none reported.
        if remote == nil { try await controller.reconcileNow(ResourceKey(kind: .node, project: nil, name: node)) }

        let limits = HTTPLimits(idleTimeout: .seconds(configuration.httpIdleTimeout), maxConnections: configuration.maxConnections, maxConnectionsPerClient: configuration.maxConnectionsPerClient)
        Self.raiseOpenFileLimit(logger: logger)
        let host = configuration.listen
        var expected: Set<ServeInfoRecorder.Endpoint> = [.api, .ec2, .s3]
        if metadataListen != nil { expected.insert(.metadata) }
        if configuration.metricsListen != nil { expected.insert(.metrics) }
        let endpoints = ServeInfoRecorder(dataDirectory: dataDirectory, listen: host, region: configuration.region, expecting: expected)
        let operations = ServerOperations(compute: compute, identity: identity)
        let api = try ResourceAPI(
            store: store, dataDirectory: dataDirectory, node: operations, maxBodyBytes: configuration.apiMaxBody << 20, region: configuration.region,
            gitTrigger: { name in await gitSync.trigger(name) }, telemetry: telemetry, metricsToken: metricsToken)
            .withDashboard()
            .application(host: host, port: configuration.apiPort, limits: limits, logger: Logger(label: "stratus.api")) { chosen in
                let url = "http://\(host):\(chosen)"
                await endpoints.bound(.api) { $0.apiURL = url; $0.apiPort = chosen }
                logger.info("resource API listening", metadata: ["stratus.url": "\(url)"])
            }
        let ec2Endpoint = configuration.ec2Port == 0 ? "" : "http://\(host):\(configuration.ec2Port)/services/Cloud"
        let ec2 = EC2API(store: store, dataDirectory: dataDirectory, node: operations, region: configuration.region, endpoint: ec2Endpoint, publicRange: publicRange, telemetry: telemetry)
            .application(host: host, port: configuration.ec2Port, limits: limits, logger: Logger(label: "stratus.ec2")) { chosen in
                let url = "http://\(host):\(chosen)/services/Cloud"
                await endpoints.bound(.ec2) { $0.ec2URL = url; $0.ec2Port = chosen }
                logger.info("EC2 API listening", metadata: ["stratus.url": "\(url)"])
            }
        let s3 = try S3API(store: store, dataDirectory: dataDirectory, region: configuration.region, domain: configuration.s3Domain, logger: Logger(label: "stratus.s3"), telemetry: telemetry)
            .application(host: host, port: configuration.s3Port, limits: limits, logger: Logger(label: "stratus.s3")) { chosen in
                let url = "http://\(host):\(chosen)"
                await endpoints.bound(.s3) { $0.s3URL = url; $0.s3Port = chosen }
                if let remoteObjects {
                    // A wildcard listener is reached here through loopback; agents elsewhere need --object-url.
                    let reachable = ["0.0.0.0", "::", "[::]"].contains(host) ? "127.0.0.1" : host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
                    if let endpoint = URL(string: "http://\(reachable):\(chosen)") { remoteObjects.listening(at: endpoint) }
                    let endpoint = remoteObjects.endpoint?.absoluteString ?? "none"
                    logger.info("node agents fetch s3:// images from", metadata: ["stratus.url": "\(endpoint)"])
                    if configuration.objectURL == nil, ["127.0.0.1", "localhost", "::1", "0.0.0.0", "::", "[::]"].contains(host) {
                        logger.warning("node agents on other hosts cannot fetch s3:// images from \(endpoint); set --object-url to an address they reach (and --listen so the S3 API listens there)")
                    }
                }
                logger.info("S3 API listening", metadata: ["stratus.url": "\(url)"])
            }
        var services: [any Service] = [controller, api, ec2, s3]
        if let listen = metadataListen {
            let (metadataHost, metadataPort) = try ServerConfiguration.hostAndPort(listen, setting: "metadata-listen")
            services.append(MetadataService(store: store).application(host: metadataHost, port: metadataPort, limits: limits, logger: Logger(label: "stratus.metadata")) { chosen in
                let url = "http://\(metadataHost):\(chosen)"
                await endpoints.bound(.metadata) { $0.metadataURL = url }
                logger.info("metadata service listening", metadata: ["stratus.url": "\(url)"])
            })
        }
        if let listen = configuration.metricsListen {
            let (metricsHost, metricsPort) = try ServerConfiguration.hostAndPort(listen, setting: "metrics-listen")
            services.append(MetricsEndpoint.application(host: metricsHost, port: metricsPort, limits: limits, telemetry: telemetry, token: metricsToken,
                                                        logger: Logger(label: "stratus.metrics")) { chosen in
                let url = "http://\(metricsHost):\(chosen)/metrics"
                await endpoints.bound(.metrics) { $0.metricsURL = url }
                logger.info("metrics listening", metadata: ["stratus.url": "\(url)"])
            })
        }
        return StratusServer(
            configuration: configuration, store: store, initialApply: initialApply, services: services, endpoints: endpoints, node: node,
            embeddedHypervisor: configuration.hypervisor == "embed" ? libvirt : nil, export: storage?.export, remote: remote
        )
    }

    /// This node's volume export with `--aoe-interface`: file-backed volumes (or an LVM volume
    /// group's, `--volume-group`) and vblade, checked from `--aoe-check-interface`.
    static func storage(_ configuration: ServerConfiguration, dataDirectory: String) throws -> VolumeReconciler.Storage? {
        guard let interface = configuration.aoeInterface, let checkInterface = configuration.aoeCheckInterface else { return nil }
        guard getuid() == 0 else { throw ConfigurationError("aoe-interface: exporting volumes needs root (vblade and the wire check use raw sockets); run as root or leave it out") }
        let directory = configuration.volumeDir ?? (dataDirectory as NSString).appendingPathComponent("volumes")
        var backing: (any VolumeBacking)?
        if let group = configuration.volumeGroup {
            let lvm = LVMBacking(volumeGroup: group)
            do { try lvm.check() } catch { throw ConfigurationError("volume-group: \(error)") }
            backing = lvm
        }
        do {
            let export = try FileBlockExport(directory: directory, interface: interface, backing: backing, logger: Logger(label: "stratus.storage"))
            let check = try AoESocketCheck(interface: checkInterface)
            return VolumeReconciler.Storage(export: export, check: check)
        } catch {
            throw ConfigurationError("aoe-interface: \(error)")
        }
    }

    /// Runs every service until one fails or a signal asks for a graceful shutdown.
    ///
    /// With `--hypervisor embed` the guests then stop too: there is no daemon to keep them, and
    /// QEMU processes left behind would run unmanaged. The next start boots them again.
    public func run(logger: Logger, gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint]) async throws {
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) }, gracefulShutdownSignals: gracefulShutdownSignals, logger: logger
        ))
        do {
            try await group.run()
        } catch {
            await stopEmbeddedGuests(logger: logger)
            await export?.stopAll()
            remote?.stop()
            throw error
        }
        await stopEmbeddedGuests(logger: logger)
        await export?.stopAll()
        remote?.stop()
    }

    /// Powers off every running Stratus guest of the embedded driver.
    public func stopEmbeddedGuests(logger: Logger) async {
        guard let hypervisor = embeddedHypervisor, let domains = try? await hypervisor.listDomains() else { return }
        for domain in domains where domain.owner != nil && domain.state.isActive {
            do {
                try await hypervisor.destroy(domain.name)
                logger.info("guest stopped with the server", metadata: ["stratus.domain": "\(domain.name)"])
            } catch {
                logger.warning("cannot stop guest", metadata: ["stratus.domain": "\(domain.name)", "stratus.error": "\(error)"])
            }
        }
    }

    /// The network reconciler: managing this namespace's kernel with `--host-network on`.
    static func networkReconciler(_ configuration: ServerConfiguration, store: Store, dataDirectory: String, node: String, metadata: String?) throws -> NetworkReconciler {
        guard case .success(let privateRange) = IPv4Network.parse(configuration.privateRange) else { throw ConfigurationError("private-range: \(configuration.privateRange) is not a CIDR") }
        guard configuration.hostNetwork == "on" else { return NetworkReconciler(store: store, host: nil, privateRange: privateRange) }
        guard getuid() == 0 else { throw ConfigurationError("host-network: on needs root (bridges, segments, DHCP and the packet filter are the kernel's); run as root or leave it off") }
        let network = try LinuxHostNetwork()
        let dhcp = try DHCPServer(directory: (dataDirectory as NSString).appendingPathComponent("dhcp"))
        var target: MetadataTarget?
        if let metadata {
            let (host, port) = try ServerConfiguration.hostAndPort(metadata, setting: "metadata-listen")
            target = MetadataTarget(ip: host == "0.0.0.0" || host == "localhost" ? "127.0.0.1" : host, port: port)
        }
        let firewall = HostFirewall(store: store, firewall: try LinuxFirewall(), node: node, privateRange: configuration.privateRange, metadata: target)
        return NetworkReconciler(store: store, host: .init(
            network: network, dhcp: dhcp, segmentation: configuration.segmentation == "auto" ? nil : configuration.segmentation,
            physicalInterface: configuration.physicalInterface ?? Self.defaultRouteInterface() ?? "lo", firewall: firewall), privateRange: privateRange)
    }

    /// The interface of the IPv4 default route (`/proc/net/route`), if there is one.
    static func defaultRouteInterface() -> String? {
        guard let table = try? String(contentsOfFile: "/proc/net/route", encoding: .utf8) else { return nil }
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
            if fields.count > 2, fields[1] == "00000000" { return String(fields[0]) }
        }
        return nil
    }

    /// The LDAP directory when one is configured; nil keeps identities in the store.
    static func directory(_ configuration: ServerConfiguration) throws -> (any Directory)? {
        guard let url = configuration.ldapURL, let bindDN = configuration.ldapBindDN, let base = configuration.ldapBase else { return nil }
        var password = ""
        if let file = configuration.ldapPasswordFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw ConfigurationError("ldap-password-file: cannot read \(file)") }
            password = text.trimmingCharacters(in: .newlines)
        }
        return LDAPDirectory(LDAPConfiguration(url: url, bindDN: bindDN, password: password, base: base), logger: Logger(label: "stratus.ldap"))
    }

    /// Raises the soft limit of open files to the hard one, so connection caps, not the kernel, bound clients.
    static func raiseOpenFileLimit(logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        let before = limit.rlim_cur
        limit.rlim_cur = limit.rlim_max
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            logger.debug("open-file limit raised", metadata: ["stratus.from": "\(before)", "stratus.to": "\(limit.rlim_max)"])
        }
    }

    /// The host name's first label, lower-cased: the default node name.
    public static func hostNodeName() -> String {
        ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init)?.lowercased() ?? "localhost"
    }
}
