import Foundation
import Logging
import StratusMessaging
import StratusModel
import StratusNode
import StratusStorage
import StratusTelemetry
import Yams

/// Every setting of `stratus serve`, resolved: flag > `STRATUS_…` variable > `--config` file > default.
///
/// Each setting is declared once, in `settings`; flags, variables, config-file keys, help and
/// `--print-config` all come from that table. The defaults are this struct's initial values.
public struct ServerConfiguration: Codable, Sendable, Equatable {
    /// What this process runs.
    public enum Role: String, Codable, Sendable, CaseIterable {
        /// Store, APIs, controller and this node's agent in one process (the embedded default).
        case all
        /// Store, APIs and controller; nodes are remote agents.
        case controller
        /// A node agent only.
        case agent
    }

    public var dataDir = ".stratus"
    public var role = Role.all
    public var apply: [String] = []
    public var applySet = "default"
    public var hypervisor = "test:///default"
    public var domainType: String?
    public var nodeCapacity: DeclaredCapacity?
    public var nodeName: String?
    public var zone = NodeSpec.defaultZone
    public var listen = "127.0.0.1"
    public var apiPort = 8774
    public var ec2Port = 8773
    public var s3Port = 3333
    public var hostNetwork = "off"
    public var segmentation = "auto"
    public var physicalInterface: String?
    public var publicRange = "203.0.113.0/24"
    public var privateRange = "10.0.0.0/8"
    public var s3Domain: String?
    public var apiMaxBody = 256
    public var httpIdleTimeout = 10
    public var maxConnections = 10_000
    public var region = "nova"
    public var maxConnectionsPerClient = 1_000
    public var metadataListen: String?
    public var aoeInterface: String?
    public var aoeCheckInterface: String?
    public var volumeDir: String?
    public var volumeGroup: String?
    public var logLevel = Logger.Level.info
    public var logFormat = LogFormat.text
    public var metricsListen: String?
    public var metricsTokenFile: String?
    public var ldapURL: String?
    public var ldapBindDN: String?
    public var ldapPasswordFile: String?
    public var ldapBase: String?
    public var resyncInterval = 30
    public var amqp: String?
    public var amqpPasswordFile: String?
    public var nodeTimeout = 30
    public var objectURL: String?

    public init() {}

    /// The table every setting is declared in.
    public static let settings: [ServerSetting] = [
        .text("data-dir", \.dataDir, environment: "STRATUS_DATA", valueName: "dir", help: "The data directory: store, disks, console logs, serve.json."),
        .choice("role", \.role, help: "What this process runs: all (store, APIs, controller and this node in one process), or controller (store, APIs and controller; the nodes are `stratus agent` processes reached through --amqp). Agents run with `stratus agent`."),
        .list("apply", \.apply, valueName: "path", help: "Manifests to apply at start (repeatable)."),
        .text("apply-set", \.applySet, environment: "STRATUS_APPLY_SET", valueName: "name", help: "The apply set for --apply."),
        .text("hypervisor", \.hypervisor, valueName: "uri", help: "libvirt URI of this node: 'embed' for real QEMU guests without a daemon (state under DATA/libvirt; what make run uses), qemu:///system, or test (test:///default): simulated guests on a node with this host's memory and CPUs, or --node-capacity."),
        .optional("domain-type", \.domainType, valueName: "kvm|qemu", help: "Domain type for new domains: kvm, or qemu (TCG). Default: kvm when /dev/kvm really works.") { text throws(ConfigurationError) in
            guard ["kvm", "qemu"].contains(text) else { throw ConfigurationError("domain-type: expected kvm or qemu, got \"\(text)\"") }
        },
        ServerSetting("node-capacity", valueName: "cpus=N,memory=SIZE", help: "This node's capacity as the scheduler should see it, instead of what the hypervisor reports, e.g. cpus=16,memory=64Gi (memory in Mi, Gi or Ti; either part may be left out). Default: the hypervisor's figures (the test driver's are this host's).", assign: { configuration, text throws(ConfigurationError) in
            do {
                configuration.nodeCapacity = try DeclaredCapacity(parsing: text)
            } catch {
                throw ConfigurationError("node-capacity: \(error)")
            }
        }, render: { $0.nodeCapacity.map { ["\($0)"] } ?? [] }),
        .optional("node-name", \.nodeName, valueName: "name", help: "This node's name. Default: the host name."),
        .text("zone", \.zone, valueName: "zone", help: "This node's availability zone."),
        .text("region", \.region, valueName: "name", help: "The region the APIs serve: a signature scoped to another is refused; DescribeRegions names it, and `stratus credentials` exports it as AWS_DEFAULT_REGION.") { text throws(ConfigurationError) in
            guard (1...63).contains(text.count), text.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d }) else {
                throw ConfigurationError("region: expected lower-case letters, digits and '-' (1 to 63 of them, like nova or eu-west-1), got \"\(text)\"")
            }
        },
        .text("listen", \.listen, valueName: "address", help: "Address the APIs listen on. Keep 127.0.0.1 unless the network in front is trusted."),
        .integer("api-port", \.apiPort, range: 0...65535, valueName: "port", help: "Port of the resource API (the CLI's --server); 0 picks a free one, written to DATA/serve.json."),
        .integer("ec2-port", \.ec2Port, range: 0...65535, valueName: "port", help: "Port of the EC2 Query API; 0 picks a free one, written to DATA/serve.json."),
        .text("host-network", \.hostNetwork, valueName: "on|off", help: "Whether this server makes its networks real in the kernel of the namespace it runs in (bridges, segments, DHCP; needs root). Off by default: networks get their VLAN and bridge names, and say that nothing more is done.") { text throws(ConfigurationError) in
            guard ["on", "off"].contains(text) else { throw ConfigurationError("host-network: expected on or off, got \"\(text)\"") }
        },
        .text("segmentation", \.segmentation, valueName: "auto|vlan|vxlan", help: "How networks leave the node: 802.1Q VLANs, VXLAN, or auto (VLAN where the kernel can make them, else VXLAN).") { text throws(ConfigurationError) in
            guard ["auto", "vlan", "vxlan"].contains(text) else { throw ConfigurationError("segmentation: expected auto, vlan or vxlan, got \"\(text)\"") }
        },
        .optional("physical-interface", \.physicalInterface, valueName: "interface", help: "The interface segments ride on. Default: the interface of the default route, else lo (a one-host VXLAN)."),
        .text("public-range", \.publicRange, valueName: "CIDR", help: "The pool elastic addresses (Address, AllocateAddress) take their public IPs from; with --host-network on each associated one is NATed to its instance. The default is a documentation range (TEST-NET-3): set the range the node's uplink is routed.") { text throws(ConfigurationError) in
            guard case .success = IPv4Network.parse(text) else { throw ConfigurationError("public-range: expected a CIDR such as 198.51.100.0/24, got \"\(text)\"") }
        },
        .text("private-range", \.privateRange, valueName: "CIDR", help: "The range of the networks' subnets: a Network without spec.cidr gets the /24 its VLAN id numbers (VLAN 100 of 10.0.0.0/8: 10.0.100.0/24); with --host-network on, instances' traffic from it that leaves the node is masqueraded behind the node's address (one with an elastic address leaves as that address).") { text throws(ConfigurationError) in
            guard case .success = IPv4Network.parse(text) else { throw ConfigurationError("private-range: expected a CIDR such as 10.0.0.0/8, got \"\(text)\"") }
        },
        .integer("s3-port", \.s3Port, range: 0...65535, valueName: "port", help: "Port of the S3 API (buckets and objects under DATA/objects); 0 picks a free one, written to DATA/serve.json."),
        .optional("s3-domain", \.s3Domain, valueName: "domain", help: "Domain of virtual-host-style S3 requests: with s3.example.com, bucket.s3.example.com names bucket. Path-style requests always work.") { text throws(ConfigurationError) in
            guard !text.isEmpty, !text.contains("/"), !text.contains(":") else { throw ConfigurationError("s3-domain: expected a host name such as s3.example.com, got \"\(text)\"") }
        },
        .integer("api-max-body", \.apiMaxBody, range: 1...4096, valueName: "MB", help: "The largest request body the resource API reads (413 beyond it), only after the signature's access key and scope were checked; 100,000 resources of manifests are about 20 MB."),
        .integer("http-idle-timeout", \.httpIdleTimeout, range: 1...3600, valueName: "seconds", help: "Seconds a connection of any API may be idle with no request in flight (sending headers counts as idle) before it is closed: slow clients cannot hold connections."),
        .integer("max-connections", \.maxConnections, range: 16...1_000_000, valueName: "count", help: "Connections each API keeps open at once; more wait in the listen backlog. The process's open-file limit is raised to its hard limit at start."),
        .integer("max-connections-per-client", \.maxConnectionsPerClient, range: 1...1_000_000, valueName: "count", help: "Connections one client address may hold open on each API; one beyond it is closed when accepted."),
        .optional("metadata-listen", \.metadataListen, valueName: "host:port", help: "Where the instance metadata service listens, e.g. 169.254.169.254:80 on a compute node. Default: off.") { text throws(ConfigurationError) in
            _ = try ServerConfiguration.hostAndPort(text, setting: "metadata-listen")
        },
        .optional("aoe-interface", \.aoeInterface, valueName: "interface", help: "The interface vblade exports volumes on over ATA-over-Ethernet (needs root). AoE has no authentication: use an interface of a storage network only. Default: none, and volumes say that nothing is exported."),
        .optional("aoe-check-interface", \.aoeCheckInterface, valueName: "interface", help: "Another port of the same Ethernet segment, from which this node checks each export answers (Query Config, ATA IDENTIFY): a raw socket does not hear answers on the interface that sends them, so it cannot be --aoe-interface itself. With a bridge: a veth pair for vblade and one for the check, both enslaved to it."),
        .optional("volume-dir", \.volumeDir, valueName: "dir", help: "Where file-backed volumes are kept (sparse files), and vblade's PID files and logs. Default: DATA/volumes."),
        .optional("volume-group", \.volumeGroup, valueName: "vg", help: "An LVM volume group whose logical volumes back the volumes (lvcreate, lvextend; zeroed before lvremove), as the seed's storage workers did. Made beforehand: vgcreate VG DEVICE. Default: sparse files under volume-dir.") { text throws(ConfigurationError) in
            guard LVMBacking.validGroupName(text) else { throw ConfigurationError("volume-group: \"\(text)\" is not a volume group name (letters, digits, + _ . -)") }
        },
        .choice("log-level", \.logLevel, help: "Log level."),
        .choice("log-format", \.logFormat, help: "text for a terminal; json for a log collector: one object a line, each with the requestId of the API call it serves (the id the API returns in x-amz-request-id or requestId; the controller's reconcile of that change logs it too)."),
        .optional("metrics-listen", \.metricsListen, valueName: "host:port", help: "Also serve /metrics (Prometheus text format) on a listener of its own, e.g. 127.0.0.1:9464. It is always on the resource API's port too.") { text throws(ConfigurationError) in
            _ = try ServerConfiguration.hostAndPort(text, setting: "metrics-listen")
        },
        .optional("metrics-token-file", \.metricsTokenFile, valueName: "file", help: "File holding a bearer token /metrics then requires (Prometheus: authorization.credentials_file). Without it /metrics needs no signature: it shows counts, never names or secrets."),
        .optional("ldap-url", \.ldapURL, valueName: "url", help: "LDAP server the identity reconciler keeps equal to the users and projects, e.g. ldap://127.0.0.1:389. Without it identities live in the store only."),
        .optional("ldap-bind-dn", \.ldapBindDN, valueName: "dn", help: "DN to bind to LDAP as."),
        .optional("ldap-password-file", \.ldapPasswordFile, valueName: "file", help: "File holding the LDAP bind password; never pass the password itself."),
        .optional("ldap-base", \.ldapBase, valueName: "dn", help: "Suffix under which ou=Users and ou=Groups are kept, e.g. dc=example,dc=org."),
        .optional("amqp", \.amqp, valueName: "url", help: "With --role controller: the RabbitMQ broker the node agents are reached through, amqp://USER@HOST:PORT/VHOST (amqps:// for TLS). Give the password with --amqp-password-file, not in the URL.") { text throws(ConfigurationError) in
            do { _ = try AMQPURL(parsing: text) } catch { throw ConfigurationError("amqp: \(error)") }
        },
        .optional("amqp-password-file", \.amqpPasswordFile, valueName: "file", help: "File holding the broker password of --amqp's user."),
        .integer("node-timeout", \.nodeTimeout, range: 1...3600, valueName: "seconds", help: "With --role controller: seconds without a heartbeat after which a node is NotReady (NodeLost) and nothing new is placed on it."),
        .optional("object-url", \.objectURL, valueName: "url", help: "With --role controller: this server's S3 endpoint as the node agents reach it, e.g. http://controller.example:3333 (listen on an address they reach, --listen). Agents fetch s3:// images from it by presigned GETs, each valid for one object and an hour. Default: http://LISTEN:S3-PORT.") { text throws(ConfigurationError) in
            guard let url = URL(string: text), ["http", "https"].contains(url.scheme ?? ""), url.host?.isEmpty == false, url.query == nil else {
                throw ConfigurationError("object-url: expected http://HOST:PORT (or https://), got \"\(text)\"")
            }
        },
        .integer("resync-interval", \.resyncInterval, range: 1...86_400, valueName: "seconds", help: "Seconds between resyncs, which put back what was changed by hand: LDAP entries are rewritten, instances compared with libvirt in bulk (every resource is reconciled at start and every 10 minutes)."),
    ]

    /// Where a setting's value came from, for `--print-config`.
    public enum Source: String, Sendable {
        case flag, environment, file, `default`
    }

    /// The sources of the settings that were set (the rest are defaults).
    public private(set) var sources: [String: Source] = [:]

    enum CodingKeys: String, CodingKey {
        case dataDir, role, apply, applySet, hypervisor, domainType, nodeCapacity, nodeName, zone, listen, apiPort, ec2Port, s3Port, s3Domain, hostNetwork, segmentation, physicalInterface, publicRange, privateRange, apiMaxBody, httpIdleTimeout, maxConnections, maxConnectionsPerClient, region, metadataListen, aoeInterface, aoeCheckInterface, volumeDir, volumeGroup, logLevel, logFormat, metricsListen, metricsTokenFile
        case ldapURL, ldapBindDN, ldapPasswordFile, ldapBase, resyncInterval, amqp, amqpPasswordFile, nodeTimeout, objectURL
    }

    /// Resolves the settings from command-line arguments (`--key value` or `--key=value`), the
    /// environment and the config file (`--config FILE` or `STRATUS_CONFIG`), then checks them together.
    public static func resolve(arguments: [String], environment: [String: String]) throws(ConfigurationError) -> ServerConfiguration {
        let flags = try parse(arguments)
        var configuration = ServerConfiguration()
        let configFile = flags.first { $0.key == "config" }?.value ?? environment["STRATUS_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        if let configFile {
            for (setting, values) in try readFile(configFile) { try configuration.set(setting, values, from: .file) }
        }
        for setting in settings {
            guard let value = environment[setting.environment], !value.isEmpty else { continue }
            try configuration.set(setting, setting.isList ? value.split(separator: ",").map(String.init) : [value], from: .environment)
        }
        var fromFlags: [String: [String]] = [:]
        var order: [String] = []
        for (key, value) in flags where key != "config" {
            if fromFlags[key] == nil { order.append(key) }
            fromFlags[key, default: []].append(value)
        }
        for key in order {
            let setting = settings.first { $0.key == key }!
            guard setting.isList || fromFlags[key]!.count == 1 else { throw ConfigurationError("\(setting.flag) was given \(fromFlags[key]!.count) times; give it once") }
            try configuration.set(setting, fromFlags[key]!, from: .flag)
        }
        try configuration.check()
        return configuration
    }

    /// Replaces a setting's value (a list setting's whole list).
    private mutating func set(_ setting: ServerSetting, _ values: [String], from source: Source) throws(ConfigurationError) {
        setting.clear?(&self)
        for value in values { try setting.assign(&self, value) }
        sources[setting.key] = source
    }

    /// The settings checked together, where one needs another.
    func check() throws(ConfigurationError) {
        switch role {
        case .agent:
            throw ConfigurationError("role: an agent is its own command: stratus agent --amqp URL --node NAME (see stratus agent --help)")
        case .controller:
            guard amqp != nil else { throw ConfigurationError("role: controller needs amqp, the broker its node agents are reached through (--amqp amqp://USER@HOST:5672/)") }
            // What the nodes do is done by their agents; this process has no node.
            if let stray = ["hypervisor", "domain-type", "node-capacity", "node-name", "zone", "aoe-interface", "aoe-check-interface", "volume-dir", "volume-group", "metadata-listen"]
                .first(where: { sources[$0] != nil }) {
                throw ConfigurationError("\(stray): a controller has no node of its own; give node settings to `stratus agent`")
            }
            if hostNetwork == "on" {
                throw ConfigurationError("host-network: on makes networks real on this host's kernel, and a controller has no node; agents do not make networks yet (leave it off)")
            }
        case .all:
            if let stray = ["amqp", "amqp-password-file", "node-timeout"].first(where: { sources[$0] != nil }) {
                throw ConfigurationError("\(stray) is for --role controller, whose nodes are agents reached through a broker; role all runs its node in this process")
            }
        }
        if ldapURL != nil && (ldapBindDN == nil || ldapBase == nil) {
            throw ConfigurationError("ldap-url needs ldap-bind-dn and ldap-base too")
        }
        if ldapURL == nil, let stray = ["ldap-bind-dn", "ldap-password-file", "ldap-base"].first(where: { sources[$0] != nil }) {
            throw ConfigurationError("\(stray) is set but ldap-url is not: set ldap-url to use an LDAP directory")
        }
        if (aoeInterface == nil) != (aoeCheckInterface == nil) {
            throw ConfigurationError(aoeInterface == nil
                ? "aoe-check-interface is set but aoe-interface is not: set aoe-interface, where vblade exports"
                : "aoe-interface needs aoe-check-interface too: another port of the same Ethernet segment, from which the node checks its exports answer")
        }
        if volumeGroup != nil && aoeInterface == nil {
            throw ConfigurationError("volume-group is set but aoe-interface is not: volumes are exported only with aoe-interface and aoe-check-interface")
        }
        if let aoeInterface, aoeInterface == aoeCheckInterface {
            throw ConfigurationError("aoe-check-interface must be another port than aoe-interface (\(aoeInterface)): a raw socket does not hear the answers to what its own interface sends")
        }
    }

    /// Splits `--key value` and `--key=value` pairs, refusing anything that is not a setting.
    static func parse(_ arguments: [String]) throws(ConfigurationError) -> [(key: String, value: String)] {
        var pairs: [(key: String, value: String)] = []
        var index = arguments.startIndex
        let known = settings.map(\.key) + ["config"]
        while index < arguments.endIndex {
            let argument = arguments[index]
            guard argument.hasPrefix("--"), argument.count > 2 else {
                throw ConfigurationError("unexpected argument \"\(argument)\": settings are given as --name value (see stratus serve --help)")
            }
            var key = String(argument.dropFirst(2))
            var value: String?
            if let equals = key.firstIndex(of: "=") {
                value = String(key[key.index(after: equals)...])
                key = String(key[..<equals])
            }
            guard known.contains(key) else {
                let hint = Suggestion.closest(to: key, in: known).map { " (did you mean --\($0)?)" } ?? ""
                throw ConfigurationError("unknown option --\(key)\(hint); see stratus serve --help")
            }
            if value == nil {
                index += 1
                guard index < arguments.endIndex, !arguments[index].hasPrefix("--") else { throw ConfigurationError("--\(key) needs a value") }
                value = arguments[index]
            }
            pairs.append((key, value!))
            index += 1
        }
        return pairs
    }

    /// The config file's settings, by setting, in file order.
    static func readFile(_ path: String) throws(ConfigurationError) -> [(ServerSetting, [String])] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ConfigurationError("config \(path): cannot read the file") }
        let node: Yams.Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw ConfigurationError("config \(path): not valid YAML: \(error)")
        }
        guard let node else { return [] }  // an empty file sets nothing
        guard let mapping = node.mapping else { throw ConfigurationError("config \(path): expected a mapping of setting: value, like api-port: 8774") }
        var result: [(ServerSetting, [String])] = []
        for (keyNode, valueNode) in mapping {
            let key = keyNode.string ?? "\(keyNode)"
            let at = "config \(path):\(keyNode.mark?.line ?? 0):\(keyNode.mark?.column ?? 0)"
            guard let setting = settings.first(where: { $0.key == key }) else {
                let hint = Suggestion.closest(to: key, in: settings.map(\.key)).map { "; did you mean \"\($0)\"?" } ?? ""
                throw ConfigurationError("\(at): unknown setting \"\(key)\"\(hint) (known: \(settings.map(\.key).joined(separator: ", ")))")
            }
            switch valueNode {
            case .scalar(let scalar):
                result.append((setting, [scalar.string]))
            case .sequence(let sequence) where setting.isList:
                var items: [String] = []
                for item in sequence {
                    guard let text = item.string else { throw ConfigurationError("\(at): \(key): expected a list of text values") }
                    items.append(text)
                }
                result.append((setting, items))
            default:
                throw ConfigurationError("\(at): \(key): expected \(setting.isList ? "a value or a list of values" : "a single value")")
            }
        }
        return result
    }

    /// `host:port`, checked.
    static func hostAndPort(_ text: String, setting: String) throws(ConfigurationError) -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port), colon != text.startIndex else {
            throw ConfigurationError("\(setting): expected HOST:PORT like 169.254.169.254:80, got \"\(text)\"")
        }
        return (String(text[..<colon]), port)
    }

    /// The effective settings as a config file would hold them, with where each came from;
    /// secrets and passwords inside URLs are redacted.
    public func rendered() -> String {
        var lines = ["# stratus serve: effective settings (flag > STRATUS_… variable > config file > default)"]
        for setting in Self.settings {
            let source = sources[setting.key] ?? .default
            let values = setting.values(in: self).map { setting.isSecret ? "<redacted>" : Self.redactingPassword($0) }
            let comment = "  # \(source.rawValue), \(setting.environment)"
            if setting.isList {
                lines.append(values.isEmpty ? "\(setting.key): []\(comment)" : "\(setting.key):\(comment)")
                lines += values.map { "  - \(Self.quoted($0))" }
            } else {
                lines.append(values.first.map { "\(setting.key): \(Self.quoted($0))\(comment)" } ?? "# \(setting.key): (unset)\(comment)")
            }
        }
        return lines.joined(separator: "\n")
    }

    /// `scheme://user:secret@host` → `scheme://user:<redacted>@host`.
    static func redactingPassword(_ value: String) -> String {
        guard let scheme = value.range(of: "://"), let at = value[scheme.upperBound...].firstIndex(of: "@"),
            let colon = value[scheme.upperBound..<at].firstIndex(of: ":")
        else { return value }
        return String(value[..<value.index(after: colon)]) + "<redacted>" + String(value[at...])
    }

    private static func quoted(_ value: String) -> String {
        let plain = value.allSatisfy { $0.isLetter || $0.isNumber || "-_./:<>@".contains($0) } && !value.isEmpty
        return plain ? value : "\"\(value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\""
    }

    /// Help for every setting, for `stratus serve --help`.
    public static var helpText: String {
        let defaults = ServerConfiguration()
        return settings.map { setting in
            let value = setting.values(in: defaults)
            let shown = setting.isList ? "" : value.first.map { "; default \($0)" } ?? ""
            return "--\(setting.key) <\(setting.valueName)>: \(setting.help) (\(setting.environment)\(shown))"
        }.joined(separator: "\n\n")
    }
}

/// A setting that is unknown, malformed or inconsistent; the message says which and what to do.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible, Equatable {
    public var description: String
    init(_ description: String) { self.description = description }
}
