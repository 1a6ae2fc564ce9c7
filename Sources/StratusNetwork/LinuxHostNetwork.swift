import Foundation
import StratusCompute

/// `HostNetwork` on Linux with iproute2: what is there comes from one `ip -json -d address show`
/// (links, their kinds, masters and addresses), and every change of a convergence goes to the kernel as one `ip -batch` (100
/// bridges with their segments take 0.07 s that way, 3.5 s as separate `ip` processes).
///
/// `namespace` runs it against a named network namespace (`ip -n`), as the tests do; nil
/// manages the namespace this process runs in, as `stratus serve` on a host (or inside a
/// namespace) does.
public struct LinuxHostNetwork: HostNetwork {
    public let namespace: String?
    let tool: String

    public init(namespace: String? = nil) throws {
        guard let tool = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first(where: FileManager.default.isExecutableFile) else {
            throw HostNetworkError("iproute2's ip is not installed (apt-get install iproute2)")
        }
        self.namespace = namespace
        self.tool = tool
    }

    /// Runs `ip` with `arguments` (in the namespace), off the cooperative pool.
    func ip(_ arguments: [String]) async throws -> ChildProcess {
        let full = (namespace.map { ["-n", $0] } ?? []) + arguments
        return try await ChildProcess.awaitRun(tool, full)
    }

    func json(_ arguments: [String]) async throws -> [[String: Any]] {
        let result = try await ip(["-json"] + arguments)
        guard result.status == 0 else { throw HostNetworkError("ip \(arguments.joined(separator: " ")) failed: \(result.errors.trimmingCharacters(in: .whitespacesAndNewlines))") }
        let trimmed = result.output.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { return [] }
        guard let list = try JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [[String: Any]] else {
            throw HostNetworkError("ip -json \(arguments.joined(separator: " ")) printed no JSON list")
        }
        return list
    }

    public func observe() async throws -> [String: ObservedLink] {
        // One look: `address show` with details carries each link's kind, id and master too.
        var links: [String: ObservedLink] = [:]
        for entry in try await json(["-d", "address", "show"]) {
            guard let name = entry["ifname"] as? String else { continue }
            let info = entry["linkinfo"] as? [String: Any]
            let data = info?["info_data"] as? [String: Any]
            let flags = entry["flags"] as? [String] ?? []
            var addresses: [String] = []
            for address in entry["addr_info"] as? [[String: Any]] ?? [] where address["family"] as? String == "inet" {
                if let local = address["local"] as? String, let prefix = address["prefixlen"] as? Int { addresses.append("\(local)/\(prefix)") }
            }
            links[name] = ObservedLink(
                name: name, kind: info?["info_kind"] as? String, segmentId: data?["id"] as? Int, master: entry["master"] as? String,
                up: flags.contains("UP"), addresses: addresses)
        }
        return links
    }

    /// The batch lines that make `links` hold `intent`, and what each changes.
    static func plan(_ intent: NetworkIntent, _ links: [String: ObservedLink]) -> [(line: String, change: String)] {
        var steps: [(String, String)] = []
        let bridge = links[intent.bridge]
        let segment = intent.segment
        let interface = segment.interface
        var existing = links[interface]
        if bridge == nil {
            steps.append(("link add name \(intent.bridge) type bridge", "\(intent.bridge): bridge created"))
        } else if bridge?.kind != "bridge" {
            steps.append(("link del \(intent.bridge)", "\(intent.bridge): a \(bridge?.kind ?? "plain") link of that name removed"))
            steps.append(("link add name \(intent.bridge) type bridge", "\(intent.bridge): bridge created"))
        }
        if let found = existing, found.kind != segment.kind || found.segmentId != segment.id {
            steps.append(("link del \(interface)", "\(interface): a \(found.kind ?? "plain") link with id \(found.segmentId.map(String.init) ?? "-") removed"))
            existing = nil
        }
        if existing == nil {
            switch segment {
            case .vlan(let id, let parent):
                steps.append(("link add link \(parent) name \(interface) type vlan id \(id)", "\(interface): VLAN \(id) on \(parent) created"))
            case .vxlan(let id, let device):
                let local = device == "lo" ? " local 127.0.0.1" : ""
                steps.append(("link add \(interface) type vxlan id \(id) dstport 4789\(local) dev \(device)", "\(interface): VXLAN \(id) over \(device) created"))
            }
        }
        if existing?.master != intent.bridge {
            steps.append(("link set \(interface) master \(intent.bridge)", "\(interface): enslaved to \(intent.bridge)"))
        }
        if bridge?.kind != "bridge" || !(bridge?.addresses.contains(intent.gateway) ?? false) {
            steps.append(("address add \(intent.gateway) dev \(intent.bridge)", "\(intent.bridge): gateway \(intent.gateway)"))
        }
        if existing?.up != true { steps.append(("link set \(interface) up", "\(interface): up")) }
        if bridge?.kind != "bridge" || bridge?.up != true { steps.append(("link set \(intent.bridge) up", "\(intent.bridge): up")) }
        return steps
    }

    public func converge(_ intents: [NetworkIntent]) async throws -> [String] {
        let links = try await observe()
        let steps = intents.flatMap { Self.plan($0, links) }
        try await batch(steps.map(\.line))
        return steps.map(\.change)
    }

    public func remove(_ intents: [NetworkIntent]) async throws -> [String] {
        let links = try await observe()
        var steps: [(String, String)] = []
        for intent in intents {
            if links[intent.segment.interface] != nil { steps.append(("link del \(intent.segment.interface)", "\(intent.segment.interface): removed")) }
            if links[intent.bridge] != nil { steps.append(("link del \(intent.bridge)", "\(intent.bridge): removed")) }
        }
        try await batch(steps.map(\.0))
        return steps.map(\.1)
    }

    /// Sends `lines` to the kernel as one `ip -batch`.
    func batch(_ lines: [String]) async throws {
        guard !lines.isEmpty else { return }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-ip-\(UUID().uuidString).batch").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        defer { unlink(file) }
        let result = try await ip(["-batch", file])
        guard result.status == 0 else {
            throw HostNetworkError("ip -batch failed: \(result.errors.trimmingCharacters(in: .whitespacesAndNewlines)) (the batch: \(lines.joined(separator: "; ")))")
        }
    }

    public func capabilities() async -> NetworkCapabilities {
        // A VLAN on one end of a veth pair made for the purpose, then both gone.
        let probe = "stvlanprobe"  // interface names have at most 15 characters
        let lines = ["link add \(probe) type veth peer name \(probe)p", "link add link \(probe) name \(probe).9 type vlan id 9"]
        defer { _ = try? ChildProcess.run(tool, (namespace.map { ["-n", $0] } ?? []) + ["link", "del", probe]) }
        do {
            try await batch(lines)
            return NetworkCapabilities(vlan: true, vlanReason: nil)
        } catch {
            let said = "\(error)"
            let reason = said.contains("Unknown device type") ? "this kernel cannot make 802.1Q VLAN interfaces (no 8021q module); use vxlan segmentation" : "VLAN interfaces cannot be made here: \(said)"
            return NetworkCapabilities(vlan: false, vlanReason: reason)
        }
    }
}
