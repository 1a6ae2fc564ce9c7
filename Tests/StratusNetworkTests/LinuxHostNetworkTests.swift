import Foundation
import StratusCompute
import StratusTestSupport
import Testing

@testable import StratusNetwork

/// `LinuxHostNetwork` against a real kernel, inside a network namespace the test makes and
/// deletes (issue 14, part 1).
/// `ip` (or another tool) off Swift's cooperative pool: a test blocked in waitpid would hold
/// one of its two threads and stall every other test's tasks.
func run(_ tool: String, _ arguments: [String]) async throws -> ChildProcess {
    try await offPool { try ChildProcess.run(tool, arguments) }
}

@Suite(.serialized) struct LinuxHostNetworkTests {
    /// Runs `body` with a fresh namespace, deleted afterwards whatever happens.
    static func inNamespace(_ body: (String) async throws -> Void) async throws {
        guard getuid() == 0 else {
            Issue.record("skipped: network namespaces need root, and this test runs as uid \(getuid())")
            return
        }
        let name = "stratus-net-\(UUID().uuidString.prefix(8).lowercased())"
        let made = try await run("/usr/sbin/ip", ["netns", "add", name])
        guard made.status == 0 else {
            Issue.record("skipped: ip netns add failed here: \(made.errors)")
            return
        }
        defer { _ = try? ChildProcess.run("/usr/sbin/ip", ["netns", "del", name]) }
        _ = try await run("/usr/sbin/ip", ["-n", name, "link", "set", "lo", "up"])
        try await body(name)
    }

    static func intents(_ ids: ClosedRange<Int>) -> [NetworkIntent] {
        ids.map { NetworkIntent(name: "p\($0)/default", bridge: "br\($0)", segment: .vxlan(id: $0, device: "lo"), gateway: "10.\($0 / 256).\($0 % 256).1/24") }
    }

    @Test("bridges with VXLAN segments and gateways are made in one batch, read back from the kernel, left alone when in place, repaired when changed by hand, and removed")
    func convergeAndRepair() async throws {
        try await Self.inNamespace { namespace in
            let network = try LinuxHostNetwork(namespace: namespace)
            let wanted = Self.intents(101...103)
            let made = try await network.converge(wanted)
            #expect(made.contains("br101: bridge created") && made.contains("vx103: VXLAN 103 over lo created"), "\(made)")
            var links = try await network.observe()
            for intent in wanted {
                let bridge = try #require(links[intent.bridge], "\(intent.bridge) in the kernel")
                let segment = try #require(links[intent.segment.interface])
                #expect(bridge.kind == "bridge" && bridge.up && bridge.addresses == [intent.gateway], "\(bridge)")
                #expect(segment.kind == "vxlan" && segment.segmentId == intent.segment.id && segment.master == intent.bridge && segment.up, "\(segment)")
            }
            #expect(try await network.converge(wanted).isEmpty, "a second convergence changes nothing")

            // Out of band: a bridge deleted, a segment taken out of its bridge, an address removed.
            _ = try await run("/usr/sbin/ip", ["-n", namespace, "link", "del", "br101"])
            _ = try await run("/usr/sbin/ip", ["-n", namespace, "link", "set", "vx102", "nomaster"])
            _ = try await run("/usr/sbin/ip", ["-n", namespace, "address", "del", "10.0.103.1/24", "dev", "br103"])
            let repaired = try await network.converge(wanted)
            #expect(repaired.contains("br101: bridge created") && repaired.contains("vx102: enslaved to br102") && repaired.contains("br103: gateway 10.0.103.1/24"), "\(repaired)")
            #expect(!repaired.contains { $0.hasPrefix("br102: bridge") || $0.hasPrefix("vx103") }, "what was in place is left alone: \(repaired)")
            links = try await network.observe()
            #expect(links["vx101"]?.master == "br101" && links["vx102"]?.master == "br102" && links["br103"]?.addresses == ["10.0.103.1/24"])

            // A segment of the wrong kind or id is replaced.
            _ = try await run("/usr/sbin/ip", ["-n", namespace, "link", "del", "vx101"])
            _ = try await run("/usr/sbin/ip", ["-n", namespace, "link", "add", "vx101", "type", "vxlan", "id", "999", "dstport", "4789", "local", "127.0.0.1", "dev", "lo"])
            let replaced = try await network.converge(wanted)
            #expect(replaced.contains { $0.hasPrefix("vx101: a vxlan link with id 999 removed") }, "\(replaced)")
            #expect(try await network.observe()["vx101"]?.segmentId == 101)

            let removed = try await network.remove(Array(wanted.prefix(2)))
            links = try await network.observe()
            #expect(removed.count == 4 && links["br101"] == nil && links["vx102"] == nil && links["br103"] != nil, "\(removed)")
        }
    }

    @Test("the kernel's VLAN ability is found out, not assumed; a VLAN network converges where it can")
    func vlanCapability() async throws {
        try await Self.inNamespace { namespace in
            let network = try LinuxHostNetwork(namespace: namespace)
            let capabilities = await network.capabilities()
            let left = try await network.observe()
            #expect(left["stvlanprobe"] == nil && left["stvlanprobep"] == nil, "the probe leaves nothing behind: \(left.keys.sorted())")
            guard capabilities.vlan else {
                #expect(capabilities.vlanReason?.contains("8021q") == true, "\(capabilities)")
                print("LinuxHostNetworkTests: skipped converging a vlan network: \(capabilities.vlanReason ?? "?"); VLANGuestTests proves the vlan mode inside a TCG guest instead")
                return
            }
            _ = try await run("/usr/sbin/ip", ["-n", namespace, "link", "add", "uplink", "type", "veth", "peer", "name", "uplinkp"])
            let intent = NetworkIntent(name: "p/default", bridge: "br200", segment: .vlan(id: 200, parent: "uplink"), gateway: "10.0.200.1/24")
            _ = try await network.converge([intent])
            let links = try await network.observe()
            #expect(links["uplink.200"]?.kind == "vlan" && links["uplink.200"]?.segmentId == 200 && links["uplink.200"]?.master == "br200")
        }
    }

    @Test("a batch the kernel refuses is an error naming what it said, not a silent half-convergence")
    func refusedBatch() async throws {
        try await Self.inNamespace { namespace in
            let network = try LinuxHostNetwork(namespace: namespace)
            let intent = NetworkIntent(name: "p/default", bridge: "br300", segment: .vxlan(id: 300, device: "no-such-device"), gateway: "10.1.44.1/24")
            await #expect(throws: HostNetworkError.self) { _ = try await network.converge([intent]) }
            do {
                _ = try await network.converge([intent])
            } catch let error as HostNetworkError {
                #expect(error.message.contains("ip -batch failed") && error.message.contains("no-such-device"), "\(error)")
            }
        }
    }
}

/// dnsmasq per bridge, with a client namespace joined to the bridge by a veth (issue 14, part 1).
@Suite(.serialized) struct DHCPServerTests {
    @Test("a client on the bridge gets its fixed address and the gateway by DHCP; hosts are reloaded; a dead server is started again; stop leaves nothing")
    func leaseToAClient() async throws {
        try await LinuxHostNetworkTests.inNamespace { node in
            let client = "stratus-cli-\(UUID().uuidString.prefix(8).lowercased())"
            _ = try await run("/usr/sbin/ip", ["netns", "add", client])
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-dhcp-\(UUID().uuidString)").path
            let dhcp = try DHCPServer(directory: directory, namespace: node)
            defer {
                dhcp.stop(bridge: "br101")
                _ = try? ChildProcess.run("/usr/sbin/ip", ["netns", "del", client])
                try? FileManager.default.removeItem(atPath: directory)
            }
            func ip(_ arguments: String...) async throws {
                let result = try await run("/usr/sbin/ip", arguments)
                #expect(result.status == 0, "ip \(arguments.joined(separator: " ")): \(result.errors)")
            }
            let network = try LinuxHostNetwork(namespace: node)
            _ = try await network.converge([NetworkIntent(name: "acme/default", bridge: "br101", segment: .vxlan(id: 101, device: "lo"), gateway: "10.0.101.1/24")])
            try await ip("-n", node, "link", "add", "vethc", "type", "veth", "peer", "name", "vethn")
            try await ip("-n", node, "link", "set", "vethc", "netns", client)
            try await ip("-n", node, "link", "set", "vethn", "master", "br101", "up")
            try await ip("-n", client, "link", "set", "vethc", "address", "52:54:00:00:00:42", "up")

            let hosts = [DHCPHost(mac: "52:54:00:00:00:42", ip: "10.0.101.42", hostname: "web-1")]
            let started = try await offPool { try dhcp.converge(bridge: "br101", range: ("10.0.101.3", "10.0.101.250", "255.255.255.0"), router: "10.0.101.1", hosts: hosts) }
            #expect(started == ["br101: DHCP server started (1 hosts)"], "\(started)")
            #expect(try await offPool { try dhcp.converge(bridge: "br101", range: ("10.0.101.3", "10.0.101.250", "255.255.255.0"), router: "10.0.101.1", hosts: hosts) }.isEmpty, "nothing to do when in place")

            // busybox udhcpc in the client namespace; its script records what it was given.
            let record = "\(directory)/udhcpc.out"
            let script = "\(directory)/udhcpc.sh"
            try "#!/bin/sh\necho \"$1 $ip $router\" >> \(record)\n".write(toFile: script, atomically: true, encoding: .utf8)
            chmod(script, 0o755)
            // A script written a moment ago can fail to execute (ETXTBSY) while a process another
            // test forks at that instant still holds its write descriptor; udhcpc then obtains
            // the lease and records nothing. That, and only that, is asked again.
            var asked = try await run("/usr/sbin/ip", ["netns", "exec", client, "busybox", "udhcpc", "-i", "vethc", "-n", "-q", "-t", "5", "-T", "1", "-s", script])
            var seen = (try? String(contentsOfFile: record, encoding: .utf8)) ?? ""
            for _ in 0..<2 where seen.isEmpty && asked.errors.contains("lease of 10.0.101.42 obtained") {
                try await Task.sleep(for: .milliseconds(500))
                asked = try await run("/usr/sbin/ip", ["netns", "exec", client, "busybox", "udhcpc", "-i", "vethc", "-n", "-q", "-t", "5", "-T", "1", "-s", script])
                seen = (try? String(contentsOfFile: record, encoding: .utf8)) ?? ""
            }
            #expect(asked.status == 0 && seen.contains("bound 10.0.101.42 10.0.101.1"), "udhcpc: \(asked.errors) \(seen)")
            #expect(dhcp.leases(bridge: "br101").contains { $0.mac == "52:54:00:00:00:42" && $0.ip == "10.0.101.42" }, "\(dhcp.leases(bridge: "br101"))")

            let more = hosts + [DHCPHost(mac: "52:54:00:00:00:43", ip: "10.0.101.43", hostname: "web-2")]
            #expect(try await offPool { try dhcp.converge(bridge: "br101", range: ("10.0.101.3", "10.0.101.250", "255.255.255.0"), router: "10.0.101.1", hosts: more) } == ["br101: DHCP hosts reloaded (2)"])
            // The reload really happened: a client with the new host's MAC gets its address.
            try await ip("-n", client, "link", "set", "vethc", "down")
            try await ip("-n", client, "link", "set", "vethc", "address", "52:54:00:00:00:43", "up")
            try await Task.sleep(for: .milliseconds(300))
            _ = try await run("/usr/sbin/ip", ["netns", "exec", client, "busybox", "udhcpc", "-i", "vethc", "-n", "-q", "-t", "5", "-T", "1", "-s", script])
            #expect(((try? String(contentsOfFile: record, encoding: .utf8)) ?? "").contains("bound 10.0.101.43 10.0.101.1"), "after SIGHUP dnsmasq serves the new host")
            let pid = try #require(dhcp.pid("br101"))
            kill(pid, SIGKILL)
            for _ in 0..<50 where kill(pid, 0) == 0 { try await Task.sleep(for: .milliseconds(20)) }
            #expect(try await offPool { try dhcp.converge(bridge: "br101", range: ("10.0.101.3", "10.0.101.250", "255.255.255.0"), router: "10.0.101.1", hosts: more) } == ["br101: DHCP server started (2 hosts)"], "a dead server is started again")
            let again = try #require(dhcp.pid("br101"))
            try await offPool { dhcp.stop(bridge: "br101") }
            // Gone, or a zombie left for a PID 1 that does not reap (daemons are not our children).
            let state = (try? String(contentsOfFile: "/proc/\(again)/stat", encoding: .utf8)).flatMap { $0.split(separator: ")").last?.trimmingCharacters(in: .whitespaces).first }
            #expect(state == nil || state == "Z", "stop ends the process (state \(state.map(String.init) ?? "gone"))")
            #expect(dhcp.pid("br101") == nil)
        }
    }
}
