import Foundation
import StratusCompute
import StratusTestSupport
import Testing

/// `stratus serve --host-network on` inside a network namespace the test makes: networks become
/// bridges, segments and DHCP servers in that namespace's kernel (issue 14).
@Suite(.serialized) struct HostNetworkTests {
    /// `ip`, off Swift's cooperative pool (a blocked pool thread stalls every other test).
    static func ip(_ arguments: String...) async -> (status: Int32, output: String) {
        await ip(arguments)
    }

    static func ip(_ arguments: [String]) async -> (status: Int32, output: String) {
        (try? await offPool { blockingIP(arguments) }) ?? (-1, "")
    }

    static func blockingIP(_ arguments: [String]) -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try? process.run()
        let data = pipe.fileHandleForReading.readToEndRetrying()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// `stratus serve --host-network on` (VXLAN over lo) inside `namespace`, applying the CLI's
    /// `cloud.yaml`, its output in `serve.log`; `stop` ends it and the DHCP server of br100.
    struct NamespacedServe: Sendable {
        let process: Process
        let log: String
        let dataDirectory: String

        func stop() async {
            let (process, dataDirectory) = (process, dataDirectory)
            _ = try? await offPool {
                process.interrupt()
                process.waitUntilExit()
                if let pid = try? String(contentsOfFile: "\(dataDirectory)/dhcp/br100.pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), let value = Int32(pid) { kill(value, SIGKILL) }
            }
        }
    }

    static func serve(in namespace: String, cli: CLI, hypervisor: String, arguments: [String] = []) throws -> NamespacedServe {
        let log = "\(cli.workDirectory)/serve.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let serve = Process()
        serve.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        serve.arguments = ["netns", "exec", namespace, CLI.binary, "serve", "--data-dir", cli.dataDirectory, "--api-port", "0", "--ec2-port", "0", "--s3-port", "0",
                           "--hypervisor", hypervisor, "--host-network", "on", "--segmentation", "vxlan", "--physical-interface", "lo"]
            + arguments + ["--apply", "\(cli.workDirectory)/cloud.yaml"]
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        serve.standardOutput = handle
        serve.standardError = handle
        try serve.run()
        return NamespacedServe(process: serve, log: log, dataDirectory: cli.dataDirectory)
    }

    @Test("serve --host-network on in a namespace: a network gets its VLAN id, bridge, VXLAN segment, gateway and a DHCP server with its instance's address; deleting it removes them")
    func networksInTheKernel() async throws {
        guard getuid() == 0 else {
            Issue.record("skipped: --host-network on needs root, and this test runs as uid \(getuid())")
            return
        }
        let namespace = "stratus-hn-\(UUID().uuidString.prefix(8).lowercased())"
        guard await Self.ip("netns", "add", namespace).status == 0 else {
            Issue.record("skipped: ip netns add failed")
            return
        }
        defer { _ = Self.blockingIP(["netns", "del", namespace]) }
        _ = await Self.ip("-n", namespace, "link", "set", "lo", "up")
        let cli = try CLI()
        try cli.write("cloud.yaml", """
            apiVersion: stratus/v1
            kind: User
            metadata: {name: alice}
            spec: {projects: [{project: acme, roles: [sysadmin, netadmin]}]}
            ---
            apiVersion: stratus/v1
            kind: Project
            metadata: {name: acme}
            spec: {manager: alice}
            ---
            apiVersion: stratus/v1
            kind: Network
            metadata: {name: default, project: acme}
            spec: {}  # its subnet: the /24 of the private range that its VLAN id numbers
            ---
            apiVersion: stratus/v1
            kind: Image
            metadata: {name: img, project: acme}
            spec: {source: /images/img.qcow2}
            ---
            apiVersion: stratus/v1
            kind: Instance
            metadata: {name: web-1, project: acme}
            spec: {image: img, instanceType: m1.tiny}

            """)
        let server = try Self.serve(in: namespace, cli: cli, hypervisor: "test")
        let serve = server.process, log = server.log
        do {
            try await scenario()
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()

        func scenario() async throws {
            func network() async throws -> [String: Any] {
                let result = try await cli.run("get", "network", "default", "-p", "acme", "-o", "json")
                return (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]) ?? [:]
            }
            var status: [String: Any] = [:]
            let deadline = ContinuousClock.now + .seconds(120)
            while ContinuousClock.now < deadline {
                status = (try await network()["status"] as? [String: Any]) ?? [:]
                let message = ((status["conditions"] as? [[String: Any]])?.first { $0["type"] as? String == "Ready" }?["message"] as? String) ?? ""
                if status["phase"] as? String == "Ready", message.contains("DHCP for 1 instance") { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            let serveLog = (try? String(contentsOfFile: log, encoding: .utf8)).map { String($0.suffix(2000)) } ?? ""
            #expect(status["phase"] as? String == "Ready", "\(status)\nserve running: \(serve.isRunning), exit \(serve.isRunning ? -1 : serve.terminationStatus)\n\(serveLog)")
            let details = status["details"] as? [String: Any] ?? [:]
            #expect(details["vlan"] as? String == "100" && details["bridge"] as? String == "br100", "the first VLAN id of the pool: \(details)")
            let nodes = try await cli.run("get", "nodes", "-o", "json").stdout
            #expect(nodes.contains("on: vxlan over lo"), "the node's status says how it makes segments: \(nodes.prefix(800))")
            #expect(nodes.contains("8021q") || nodes.contains("available"), "and whether the kernel can make VLANs: \(nodes.prefix(800))")

            let links = await Self.ip("-n", namespace, "-json", "-d", "link", "show").output
            let parsed = (try? JSONSerialization.jsonObject(with: Data(links.utf8)) as? [[String: Any]]) ?? []
            let segment = parsed.first { $0["ifname"] as? String == "vx100" }
            #expect(parsed.contains { $0["ifname"] as? String == "br100" } && segment?["master"] as? String == "br100", "the kernel holds br100 and vx100 in it: \(links.prefix(600))")
            #expect(await Self.ip("-n", namespace, "address", "show", "br100").output.contains("10.0.100.1/24"), "the gateway of 10.0.100.0/24, the slice of 10.0.0.0/8 numbered by VLAN 100, is on the bridge")
            let instance = try await cli.run("get", "instance", "web-1", "-p", "acme", "-o", "json").stdout
            let mac = (instance.firstMatch(of: /"mac" : "([0-9a-f:]+)"/)?.1).map(String.init) ?? (instance.firstMatch(of: /"mac":"([0-9a-f:]+)"/)?.1).map(String.init)
            let hosts = (try? String(contentsOfFile: "\(cli.dataDirectory)/dhcp/br100.hosts", encoding: .utf8)) ?? ""
            #expect(mac != nil && hosts.contains(mac!) && hosts.contains("web-1"), "the DHCP server knows web-1's MAC \(mac ?? "?"): \(hosts)")
            let pid = (try? String(contentsOfFile: "\(cli.dataDirectory)/dhcp/br100.pid", encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            #expect(pid.map { kill($0, 0) == 0 } == true, "dnsmasq runs for br100")

            // Out of band: the bridge deleted; the reconciler puts it back.
            _ = await Self.ip("-n", namespace, "link", "del", "br100")
            var back = false
            for _ in 0..<100 where !back {
                try await Task.sleep(for: .milliseconds(200))
                back = await Self.ip("-n", namespace, "address", "show", "br100").output.contains("10.0.100.1/24")
            }
            #expect(back, "a bridge deleted by hand is back with its gateway within 20 s")

            // Deleting the instance and the network takes them out of the kernel.
            #expect(try await cli.run("delete", "instance", "web-1", "-p", "acme").status == 0)
            #expect(try await cli.run("delete", "network", "default", "-p", "acme").status == 0)
            var gone = false
            for _ in 0..<100 where !gone {
                try await Task.sleep(for: .milliseconds(200))
                gone = await Self.ip("-n", namespace, "link", "show", "br100").status != 0
            }
            #expect(gone, "the bridge is removed with the network")
        }
    }

    @Test("serve --host-network on: an instance's namespace gets its address by DHCP and reaches the metadata service at 169.254.169.254; its elastic address reaches the port its group allows from outside, not another, not after disassociation; a flushed table is put back")
    func addressesAndGroupsInTheKernel() async throws {
        guard getuid() == 0 else {
            Issue.record("skipped: --host-network on needs root, and this test runs as uid \(getuid())")
            return
        }
        let tag = UUID().uuidString.prefix(6).lowercased()
        let node = "st-e2e-node-\(tag)", guest = "st-e2e-vm-\(tag)", outside = "st-e2e-out-\(tag)"
        for namespace in [node, guest, outside] {
            guard await Self.ip("netns", "add", namespace).status == 0 else {
                Issue.record("skipped: ip netns add failed")
                return
            }
        }
        defer { for namespace in [node, guest, outside] { _ = Self.blockingIP(["netns", "del", namespace]) } }
        func ip(_ arguments: String...) async {
            let result = await Self.ip(arguments)
            #expect(result.status == 0, "ip \(arguments.joined(separator: " ")): \(result.output)")
        }
        for namespace in [node, guest, outside] { await ip("-n", namespace, "link", "set", "lo", "up") }
        // The node's uplink: the outside routes the public range to it.
        await ip("link", "add", "up0", "netns", node, "type", "veth", "peer", "name", "eth0", "netns", outside)
        await ip("-n", node, "address", "add", "192.0.2.1/24", "dev", "up0")
        await ip("-n", node, "link", "set", "up0", "up")
        await ip("-n", outside, "address", "add", "192.0.2.2/24", "dev", "eth0")
        await ip("-n", outside, "link", "set", "eth0", "up")
        await ip("-n", outside, "route", "add", "198.51.100.0/24", "via", "192.0.2.1")

        let cli = try CLI()
        func cloud(associated: Bool) -> String {
            """
            apiVersion: stratus/v1
            kind: User
            metadata: {name: alice}
            spec: {projects: [{project: acme, roles: [sysadmin, netadmin]}]}
            ---
            apiVersion: stratus/v1
            kind: Project
            metadata: {name: acme}
            spec: {manager: alice}
            ---
            apiVersion: stratus/v1
            kind: Network
            metadata: {name: default, project: acme}
            spec: {cidr: 10.30.0.0/24}
            ---
            apiVersion: stratus/v1
            kind: SecurityGroup
            metadata: {name: web, project: acme}
            spec: {ingress: [{protocol: tcp, fromPort: 8080, toPort: 8080, cidr: 0.0.0.0/0}]}
            ---
            apiVersion: stratus/v1
            kind: Image
            metadata: {name: img, project: acme}
            spec: {source: /images/img.qcow2}
            ---
            apiVersion: stratus/v1
            kind: Instance
            metadata: {name: web-1, project: acme}
            spec: {image: img, instanceType: m1.tiny, securityGroups: [web]}
            ---
            apiVersion: stratus/v1
            kind: Address
            metadata: {name: eip-1, project: acme}
            spec: {\(associated ? "instance: web-1" : "")}

            """
        }
        try cli.write("cloud.yaml", cloud(associated: true))
        let server = try Self.serve(in: node, cli: cli, hypervisor: "test", arguments: ["--public-range", "198.51.100.0/24"])
        let serve = server.process, log = server.log
        do {
            try await scenario()
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()

        func resource(_ kind: String, _ name: String) async throws -> [String: Any] {
            let result = try await cli.run("get", kind, name, "-p", "acme", "-o", "json")
            return (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]) ?? [:]
        }
        func phase(_ kind: String, _ name: String) async throws -> String? {
            (try await resource(kind, name)["status"] as? [String: Any])?["phase"] as? String
        }
        func waitFor(_ what: String, seconds: Int = 60, _ condition: () async throws -> Bool) async throws {
            let deadline = ContinuousClock.now + .seconds(seconds)
            while ContinuousClock.now < deadline {
                if try await condition() { return }
                try await Task.sleep(for: .milliseconds(200))
            }
            let serveLog = (try? String(contentsOfFile: log, encoding: .utf8)).map { String($0.suffix(1500)) } ?? ""
            Issue.record("timed out waiting for \(what)\nserve running: \(serve.isRunning)\n\(serveLog)")
            throw CancellationError()
        }

        func scenario() async throws {
            try await waitFor("the network and the address to converge") {
                let network = try await phase("network", "default")
                let address = try await phase("address", "eip-1")
                return network == "Ready" && address == "Associated"
            }
            let address = try await resource("address", "eip-1")
            let publicIp = try #require(((address["status"] as? [String: Any])?["details"] as? [String: Any])?["publicIp"] as? String)
            #expect(publicIp == "198.51.100.1", "the first address of --public-range: \(publicIp)")
            let instance = try await resource("instance", "web-1")
            let id = try #require((instance["metadata"] as? [String: Any])?["id"] as? String)
            let details = ((instance["status"] as? [String: Any])?["details"] as? [String: Any]) ?? [:]
            let mac = try #require(details["mac"] as? String), fixed = try #require(details["ip"] as? String)

            // The "guest": a namespace on br100 through a veth named as the instance's bridge port.
            let port = "st-" + id
            await ip("link", "add", port, "netns", node, "type", "veth", "peer", "name", "eth0", "netns", guest)
            await ip("-n", node, "link", "set", port, "master", "br100")
            await ip("-n", node, "link", "set", port, "up")
            await ip("-n", guest, "link", "set", "eth0", "address", mac)
            await ip("-n", guest, "link", "set", "eth0", "up")
            let script = "\(cli.workDirectory)/udhcpc.sh", record = "\(cli.workDirectory)/udhcpc.out"
            try """
                #!/bin/sh
                echo "$1 $ip $router" >> \(record)
                if [ "$1" = bound ]; then /usr/sbin/ip address add "$ip/$mask" dev "$interface"; /usr/sbin/ip route add default via "$router"; fi

                """.write(toFile: script, atomically: true, encoding: .utf8)
            chmod(script, 0o755)
            let asked = await Self.ip("netns", "exec", guest, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-t", "10", "-T", "1", "-s", script)
            let seen = (try? String(contentsOfFile: record, encoding: .utf8)) ?? ""
            #expect(asked.status == 0 && seen.contains("bound \(fixed) 10.30.0.1"), "the guest's lease is its allocated address \(fixed): \(asked.output) \(seen)")

            let metadata = try await NamespaceTraffic.get(from: guest, "http://169.254.169.254/latest/meta-data/instance-id")
            #expect(metadata == id, "the metadata service answers the guest with its own id through 169.254.169.254: \(metadata ?? "no answer")")
            let publicFromMetadata = try await NamespaceTraffic.get(from: guest, "http://169.254.169.254/latest/meta-data/public-ipv4")
            #expect(publicFromMetadata == publicIp, "and its public address: \(publicFromMetadata ?? "no answer")")

            let stopListening = try await NamespaceTraffic.listen(in: guest, ports: [8080, 8081])
            defer { stopListening() }
            #expect(try await NamespaceTraffic.connects(from: outside, to: publicIp, 8080), "the group's port answers on the elastic address from outside")
            #expect(try await !NamespaceTraffic.connects(from: outside, to: publicIp, 8081), "a port no rule allows does not")


            // Disassociated: the NAT goes, within seconds.
            try cli.write("cloud.yaml", cloud(associated: false))
            #expect(try await cli.run("apply", "-f", "\(cli.workDirectory)/cloud.yaml").status == 0)
            try await waitFor("the address to be disassociated", seconds: 30) { try await phase("address", "eip-1") == "Allocated" }
            try await waitFor("the NAT to leave the kernel", seconds: 20) { try await !NamespaceTraffic.connects(from: outside, to: publicIp, 8080) }

            // The table flushed by hand is put back.
            #expect(await Self.ip("netns", "exec", node, "nft", "flush", "table", "ip", "stratus").status == 0)
            try await waitFor("the flushed table to be put back", seconds: 30) {
                let listed = await Self.ip("netns", "exec", node, "nft", "list", "table", "ip", "stratus").output
                return listed.contains("chain in-\(id)") && listed.contains("tcp dport 8080 accept")
            }
        }
    }

    @Test("a real TCG guest on the network its project got with it gets its address by DHCP and reads its instance-id from 169.254.169.254, as its console shows")
    func realGuestDHCPAndMetadata() async throws {
        guard getuid() == 0 else {
            Issue.record("skipped: --host-network on needs root, and this test runs as uid \(getuid())")
            return
        }
        let tiny: TinyImage
        do {
            tiny = try await TinyImage.build().image
        } catch {
            Issue.record("cannot build the tiny image on this machine: \(error)")
            return
        }
        let node = "st-vm-node-\(UUID().uuidString.prefix(6).lowercased())"
        guard await Self.ip("netns", "add", node).status == 0 else {
            Issue.record("skipped: ip netns add failed")
            return
        }
        defer { _ = Self.blockingIP(["netns", "del", node]) }
        _ = await Self.ip("-n", node, "link", "set", "lo", "up")
        let cli = try CLI()
        try cli.write("cloud.yaml", """
            apiVersion: stratus/v1
            kind: User
            metadata: {name: alice}
            spec: {projects: [{project: acme, roles: [sysadmin, netadmin]}]}
            ---
            apiVersion: stratus/v1
            kind: Project
            metadata: {name: acme}
            spec: {manager: alice}
            ---
            # No Network: the first instance gets the project one (VLAN 100: 10.0.100.0/24).
            apiVersion: stratus/v1
            kind: Image
            metadata: {name: tiny, project: acme}
            spec: {source: \(tiny.disk), format: raw, kernel: \(tiny.kernel), ramdisk: \(tiny.ramdisk), cmdline: "\(TinyImage.cmdline)"}
            ---
            apiVersion: stratus/v1
            kind: Instance
            metadata: {name: vm-1, project: acme}
            spec: {image: tiny, instanceType: m1.tiny}

            """)
        let server = try Self.serve(in: node, cli: cli, hypervisor: "embed")
        let log = server.log, dataDirectory = cli.dataDirectory
        do {
            try await scenario()
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()

        func scenario() async throws {
            var console = ""
            var instance: [String: Any] = [:]
            let deadline = ContinuousClock.now + .seconds(180)
            while ContinuousClock.now < deadline {
                let shown = try await cli.run("get", "instance", "vm-1", "-p", "acme", "-o", "json")
                instance = (try? JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any]) ?? [:]
                if let id = (instance["metadata"] as? [String: Any])?["id"] as? String {
                    console = try await cli.run("console", id, "-p", "acme").stdout
                    if console.contains("\(TinyImage.networkMarker) instance-id") || console.contains("\(TinyImage.networkMarker) no DHCP") { break }
                }
                try await Task.sleep(for: .milliseconds(500))
            }
            let id = (instance["metadata"] as? [String: Any])?["id"] as? String ?? "?"
            let fixed = (((instance["status"] as? [String: Any])?["details"] as? [String: Any])?["ip"] as? String) ?? "?"
            let serveLog = (try? String(contentsOfFile: log, encoding: .utf8)).map { String($0.suffix(1500)) } ?? ""
            let xml = (try? FileManager.default.subpathsOfDirectory(atPath: "\(dataDirectory)/libvirt"))?.filter { $0.hasSuffix("\(id).xml") }
                .compactMap { try? String(contentsOfFile: "\(dataDirectory)/libvirt/\($0)", encoding: .utf8) }.first.map { String($0.prefix(3000)) } ?? "no domain XML found"
            #expect(console.contains("\(TinyImage.networkMarker) eth0 inet \(fixed)/24"), "the guest's DHCP lease is its allocated address \(fixed): \(console.suffix(1200))\n\(serveLog)\n\(instance["status"] ?? "")\n\(xml)")
            #expect(console.contains("\(TinyImage.networkMarker) instance-id \(id)"), "the guest read its own instance-id \(id) from 169.254.169.254: \(console.suffix(600))")
        }
    }
}
