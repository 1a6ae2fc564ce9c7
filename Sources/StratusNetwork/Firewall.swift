import Foundation
import StratusCompute

/// What one node's packet filter must hold, whole: each instance's ingress rules and
/// anti-spoofing, elastic addresses' NAT, the metadata redirect, isolation between networks.
public struct FirewallIntent: Sendable, Equatable {
    /// The bridges of the node's networks (`br100`).
    public var bridges: [String]
    /// Instances' traffic from this range leaving the node (not onto a bridge) is masqueraded
    /// behind the node's own address, unless the instance has an elastic address.
    public var privateRange: String?
    /// Where guests' `169.254.169.254:80` goes.
    public var metadata: MetadataTarget?
    public var elastic: [ElasticMapping]
    public var instances: [GuardedInstance]
    /// The names of every instance port (`st-i-*`): one not among `instances` sends nothing.
    public var portPattern: String?

    public init(bridges: [String] = [], privateRange: String? = nil, metadata: MetadataTarget? = nil, elastic: [ElasticMapping] = [], instances: [GuardedInstance] = [], portPattern: String? = nil) {
        self.portPattern = portPattern
        self.bridges = bridges
        self.privateRange = privateRange
        self.metadata = metadata
        self.elastic = elastic
        self.instances = instances
    }
}

/// The metadata listener guests reach through `169.254.169.254:80`.
public struct MetadataTarget: Sendable, Equatable {
    public var ip: String
    public var port: Int

    public init(ip: String, port: Int) {
        self.ip = ip
        self.port = port
    }
}

/// An elastic address associated with an instance: DNAT in, SNAT out.
public struct ElasticMapping: Sendable, Equatable {
    public var publicIp: String
    public var privateIp: String

    public init(publicIp: String, privateIp: String) {
        self.publicIp = publicIp
        self.privateIp = privateIp
    }
}

/// One instance's NIC as the filter sees it: its bridge port, MAC and IP, and what may reach it.
public struct GuardedInstance: Sendable, Equatable {
    /// `i-0000beef`: names its chains.
    public var id: String
    /// The bridge port of its NIC (`tap0000beef`).
    public var port: String
    public var mac: String
    public var ip: String
    /// Allowed ingress; everything else is dropped (replies to its own traffic pass).
    public var ingress: [FilterRule]

    public init(id: String, port: String, mac: String, ip: String, ingress: [FilterRule]) {
        self.id = id
        self.port = port
        self.mac = mac
        self.ip = ip
        self.ingress = ingress
    }
}

/// One allowed kind of ingress: a protocol (nil for all), a port range (ICMP: a type), sources.
public struct FilterRule: Sendable, Equatable {
    public var proto: String?
    /// Ports; for ICMP the type alone (`icmpCode` holds the code).
    public var ports: ClosedRange<Int>?
    public var icmpCode: Int?
    /// CIDRs or addresses; at least one.
    public var sources: [String]

    public init(proto: String?, ports: ClosedRange<Int>?, icmpCode: Int? = nil, sources: [String]) {
        self.proto = proto
        self.ports = ports
        self.icmpCode = icmpCode
        self.sources = sources
    }
}

/// Renders a `FirewallIntent` as one `nft -f` script that replaces Stratus' two tables
/// atomically (`table ip stratus` for NAT and filtering, `table bridge stratus` for
/// anti-spoofing on the instances' bridge ports) and touches no other table.
///
/// Filtering of traffic between instances on one bridge relies on br_netfilter (bridged IPv4
/// passes the `ip` hooks); the kernel's own conntrack makes replies pass.
public enum NFTRuleset {
    public static let table = "stratus"

    public static func render(_ intent: FirewallIntent) -> String {
        let bridges = intent.bridges.filter(isInterface).sorted()
        let instances = intent.instances.filter { isInterface($0.port) && isMAC($0.mac) && isIPv4($0.ip) && isName($0.id) }.sorted { $0.id < $1.id }
        // One mapping per public and per private address: a map with a key twice is refused whole.
        var seenPublic = Set<String>(), seenPrivate = Set<String>()
        let elastic = intent.elastic.filter { isIPv4($0.publicIp) && isIPv4($0.privateIp) }.sorted { $0.publicIp < $1.publicIp }
            .filter { seenPublic.insert($0.publicIp).inserted && seenPrivate.insert($0.privateIp).inserted }
        let bridgeSet = bridges.isEmpty ? nil : "@bridges"
        var lines = ["table ip \(table)", "delete table ip \(table)", "table ip \(table) {"]
        if !bridges.isEmpty {
            // Named sets: one rule serves every bridge (200 networks are 200 elements, not 200 rules of 200).
            lines += ["  set bridges {", "    type ifname", "    elements = { " + bridges.map { "\"\($0)\"" }.joined(separator: ", ") + " }", "  }"]
            lines += ["  set same {", "    type ifname . ifname", "    elements = { " + bridges.map { "\"\($0)\" . \"\($0)\"" }.joined(separator: ", ") + " }", "  }"]
        }
        lines += ["  chain prerouting {", "    type nat hook prerouting priority dstnat; policy accept;"]
        if let bridgeSet, let target = intent.metadata, isIPv4(target.ip), (1...65535).contains(target.port) {
            lines.append("    iifname \(bridgeSet) ip daddr 169.254.169.254 tcp dport 80 dnat to \(target.ip):\(target.port)")
        }
        if !elastic.isEmpty {
            lines.append("    dnat to ip daddr map { " + elastic.map { "\($0.publicIp) : \($0.privateIp)" }.joined(separator: ", ") + " }")
        }
        lines += ["  }", "  chain output {", "    type nat hook output priority -100; policy accept;"]
        // The node itself reaches an elastic address as anyone outside does.
        if !elastic.isEmpty {
            lines.append("    dnat to ip daddr map { " + elastic.map { "\($0.publicIp) : \($0.privateIp)" }.joined(separator: ", ") + " }")
        }
        lines += ["  }", "  chain postrouting {", "    type nat hook postrouting priority srcnat; policy accept;"]
        if !elastic.isEmpty {
            let outward = bridgeSet.map { "oifname != \($0) " } ?? ""
            lines.append("    \(outward)snat to ip saddr map { " + elastic.map { "\($0.privateIp) : \($0.publicIp)" }.joined(separator: ", ") + " }")
        }
        if let range = intent.privateRange, isCIDR(range), let bridgeSet {
            lines.append("    ip saddr \(range) oifname != \(bridgeSet) masquerade")
        }
        lines += ["  }", "  chain input {", "    type filter hook input priority filter; policy accept;"]
        if !bridges.isEmpty {
            // route_localnet lets DNATed packets reach 127.0.0.1 from the bridges; nothing else may.
            lines.append("    iifname @bridges ip daddr 127.0.0.0/8 ct status & dnat == 0 drop")
        }
        lines += ["  }", "  chain forward {", "    type filter hook forward priority filter; policy accept;"]
        lines += ["    ct state established,related accept", "    ct state invalid drop"]
        if !bridges.isEmpty {
            // One network's instances do not reach another's, except through an elastic address.
            lines.append("    iifname @bridges oifname @bridges iifname . oifname != @same ct status & dnat == 0 drop")
        }
        if !instances.isEmpty {
            lines.append("    ip daddr vmap { " + instances.map { "\($0.ip) : jump in-\($0.id)" }.joined(separator: ", ") + " }")
        }
        if !bridges.isEmpty {
            // An address on a network that is no instance's (yet): nothing reaches it.
            lines.append("    oifname @bridges drop")
        }
        lines.append("  }")
        for instance in instances {
            lines.append("  chain in-\(instance.id) {")
            for rule in instance.ingress {
                if let line = ruleLine(rule) { lines.append("    " + line) }
            }
            lines += ["    drop", "  }"]
        }
        lines.append("}")
        lines += ["table bridge \(table)", "delete table bridge \(table)", "table bridge \(table) {"]
        if !bridges.isEmpty {
            lines += ["  set bridges {", "    type ifname", "    elements = { " + bridges.map { "\"\($0)\"" }.joined(separator: ", ") + " }", "  }"]
        }
        if !instances.isEmpty {
            lines += ["  set ports {", "    type ifname", "    elements = { " + instances.map { "\"\($0.port)\"" }.joined(separator: ", ") + " }", "  }"]
        }
        var guard_: [String] = []
        if !instances.isEmpty {
            guard_.append("    oifname @ports ether type ip6 drop")
            guard_.append("    iifname vmap { " + instances.map { "\"\($0.port)\" : jump from-\($0.id)" }.joined(separator: ", ") + " }")
        }
        // A guest's port the filter does not know yet (its instance has no address yet) sends nothing.
        if let pattern = intent.portPattern, isPortPattern(pattern) { guard_.append("    iifname \"\(pattern)\" drop") }
        if !guard_.isEmpty {
            lines += ["  chain forward {", "    type filter hook forward priority filter; policy accept;"] + guard_ + ["  }"]
            lines += ["  chain input {", "    type filter hook input priority filter; policy accept;"] + guard_.filter { !$0.contains("oifname") } + ["  }"]
            lines += ["  chain output {", "    type filter hook output priority filter; policy accept;"] + guard_.filter { $0.contains("oifname") } + ["  }"]
        }
        for instance in instances {
            lines += [
                "  chain from-\(instance.id) {",
                "    ether saddr != \(instance.mac.lowercased()) drop",
                "    arp saddr ip != \(instance.ip) drop",
                "    arp saddr ether != \(instance.mac.lowercased()) drop",
                "    ip saddr 0.0.0.0 udp sport 68 udp dport 67 accept",
                // Only IPv4 and ARP: tagged frames would pass br_netfilter unfiltered.
                "    ether type != { ip, arp } drop",
                "    ip saddr != \(instance.ip) drop",
                "    accept",
                "  }",
            ]
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    /// The nft statement of one rule, or nil when it names nothing valid.
    static func ruleLine(_ rule: FilterRule) -> String? {
        let sources = rule.sources.filter { isCIDR($0) || isIPv4($0) }.sorted()
        guard !sources.isEmpty else { return nil }
        let from = sources.count == 1 ? "ip saddr \(sources[0])" : "ip saddr { " + sources.joined(separator: ", ") + " }"
        switch rule.proto {
        case nil:
            return "\(from) accept"
        case "tcp", "udp":
            guard let ports = rule.ports else { return "\(from) meta l4proto \(rule.proto!) accept" }
            guard ports.lowerBound >= 0, ports.upperBound <= 65535 else { return nil }
            let range = ports.lowerBound == ports.upperBound ? "\(ports.lowerBound)" : "\(ports.lowerBound)-\(ports.upperBound)"
            return "\(from) \(rule.proto!) dport \(range) accept"
        case "icmp":
            guard let ports = rule.ports, ports.lowerBound >= 0 else { return "\(from) ip protocol icmp accept" }
            guard ports.lowerBound <= 255 else { return nil }
            if let code = rule.icmpCode, code >= 0 {
                guard code <= 255 else { return nil }
                return "\(from) icmp type \(ports.lowerBound) icmp code \(code) accept"
            }
            return "\(from) icmp type \(ports.lowerBound) accept"
        default:
            return nil
        }
    }

    static func isInterface(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 15 && name.utf8.allSatisfy { $0.isASCIIAlnum || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }
    }

    static func isPortPattern(_ pattern: String) -> Bool {
        pattern.hasSuffix("*") && pattern.count >= 3 && isInterface(String(pattern.dropLast()))
    }

    static func isName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64 && name.utf8.allSatisfy { $0.isASCIIAlnum || $0 == UInt8(ascii: "-") }
    }

    static func isMAC(_ text: String) -> Bool {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        return parts.count == 6 && parts.allSatisfy { $0.count == 2 && $0.allSatisfy(\.isHexDigit) }
    }

    static func isIPv4(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCIIDigit) && Int($0)! <= 255 }
    }

    static func isCIDR(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count == 2 && isIPv4(String(parts[0])) && Int(parts[1]).map { (0...32).contains($0) } == true
    }
}

extension UInt8 {
    var isASCIIAlnum: Bool { (0x30...0x39).contains(self) || (0x41...0x5A).contains(self) || (0x61...0x7A).contains(self) }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

/// Stratus' tables in the node's kernel with nftables: replaced whole and atomically by one
/// `nft -f`, read back with `nft list ruleset` (only the two `stratus` tables are looked at, and
/// no other table is ever changed).
///
/// `namespace` runs nft in a named network namespace (`ip netns exec`), as the tests do.
public struct LinuxFirewall: Sendable {
    public let namespace: String?
    let nft: String

    public init(namespace: String? = nil) throws {
        guard let nft = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"].first(where: FileManager.default.isExecutableFile) else {
            throw HostNetworkError("nftables' nft is not installed (apt-get install nftables)")
        }
        self.nft = nft
        self.namespace = namespace
    }

    func run(_ arguments: [String]) async throws -> ChildProcess {
        let (tool, full) = namespace.map { ("/usr/sbin/ip", ["netns", "exec", $0, nft] + arguments) } ?? (nft, arguments)
        return try await ChildProcess.awaitRun(tool, full)
    }

    /// Stratus' two tables as the kernel lists them ("" when neither exists).
    public func observe() async throws -> String {
        let result = try await run(["list", "ruleset"])
        guard result.status == 0 else { throw HostNetworkError("nft list ruleset failed: \(result.errors.trimmingCharacters(in: .whitespacesAndNewlines))") }
        return Self.ours(result.output)
    }

    /// The blocks of `table ip stratus` and `table bridge stratus` in a ruleset listing.
    static func ours(_ listing: String) -> String {
        var kept: [Substring] = []
        var inside = false
        for line in listing.split(separator: "\n", omittingEmptySubsequences: false) {
            if !inside, line == "table ip \(NFTRuleset.table) {" || line == "table bridge \(NFTRuleset.table) {" { inside = true }
            if inside { kept.append(line) }
            if inside, line == "}" { inside = false }
        }
        return kept.joined(separator: "\n")
    }

    /// Replaces both tables with `script` (as `NFTRuleset.render` makes it), atomically.
    public func apply(_ script: String) async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-\(UUID().uuidString).nft").path
        try script.write(toFile: file, atomically: true, encoding: .utf8)
        defer { unlink(file) }
        let result = try await run(["-f", file])
        guard result.status == 0 else {
            throw HostNetworkError("nft -f failed: \(result.errors.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// Turns on what the tables rely on: forwarding between interfaces, bridged IPv4 through
    /// the `ip` hooks (br_netfilter, where the kernel has it), and — for a metadata listener on
    /// loopback — routing of DNATed packets to 127.0.0.1 from the bridges (`route_localnet`).
    /// Returns the bridges that now hold `route_localnet` (one not made yet is skipped, and asked
    /// for again at a later run).
    @discardableResult
    public func enableForwarding(bridges: [String], localMetadata: Bool) async throws -> Set<String> {
        let sysctl = ["/usr/sbin/sysctl", "/sbin/sysctl"].first(where: FileManager.default.isExecutableFile) ?? "/usr/sbin/sysctl"
        func run(_ arguments: [String]) async throws -> ChildProcess {
            let (tool, full) = namespace.map { ("/usr/sbin/ip", ["netns", "exec", $0, sysctl] + arguments) } ?? (sysctl, arguments)
            return try await ChildProcess.awaitRun(tool, full)
        }
        if !FileManager.default.fileExists(atPath: "/proc/sys/net/bridge/bridge-nf-call-iptables"),
           let modprobe = ["/usr/sbin/modprobe", "/sbin/modprobe"].first(where: FileManager.default.isExecutableFile) {
            _ = try? await ChildProcess.awaitRun(modprobe, ["br_netfilter"])  // where modules can be loaded; reported otherwise
        }
        var settings = ["net.ipv4.ip_forward=1"]
        if FileManager.default.fileExists(atPath: "/proc/sys/net/bridge/bridge-nf-call-iptables") { settings.append("net.bridge.bridge-nf-call-iptables=1") }
        let local = localMetadata ? bridges.filter(NFTRuleset.isInterface) : []
        settings += local.map { "net.ipv4.conf.\($0).route_localnet=1" }
        // -e: a bridge the kernel does not hold yet (its network is still converging) is skipped.
        let result = try await run(["-qew"] + settings)
        guard result.status == 0 else { throw HostNetworkError("sysctl \(settings.joined(separator: " ")) failed: \(result.errors.trimmingCharacters(in: .whitespacesAndNewlines))") }
        guard !local.isEmpty else { return [] }
        let read = try await run(["-e"] + local.map { "net.ipv4.conf.\($0).route_localnet" })
        var holding: Set<String> = []
        for line in read.output.split(separator: "\n") where line.hasSuffix("= 1") {
            let key = line.split(separator: " ").first.map(String.init) ?? ""
            if let bridge = local.first(where: { "net.ipv4.conf.\($0).route_localnet" == key }) { holding.insert(bridge) }
        }
        return holding
    }

    /// Whether bridged IPv4 passes the `ip` hooks, so instances on one bridge are filtered
    /// from each other too (without br_netfilter only routed traffic is).
    public var filtersBridgedTraffic: Bool {
        (try? String(contentsOfFile: "/proc/sys/net/bridge/bridge-nf-call-iptables", encoding: .utf8))?.hasPrefix("1") ?? false
    }

    /// Removes both tables (nothing else).
    public func remove() async throws {
        try await apply("table ip \(NFTRuleset.table)\ndelete table ip \(NFTRuleset.table)\ntable bridge \(NFTRuleset.table)\ndelete table bridge \(NFTRuleset.table)\n")
    }
}
