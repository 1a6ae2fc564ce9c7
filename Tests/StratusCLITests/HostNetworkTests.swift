import Foundation
import StratusTestSupport
import Testing

/// `stratus serve --host-network on` inside a network namespace the test makes: networks become
/// bridges, segments and DHCP servers in that namespace's kernel (issue 14).
@Suite(.serialized) struct HostNetworkTests {
    /// `ip`, off Swift's cooperative pool (a blocked pool thread stalls every other test).
    static func ip(_ arguments: String...) async -> (status: Int32, output: String) {
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
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
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
            spec: {cidr: 10.20.0.0/24}
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
        let log = "\(cli.workDirectory)/serve.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let serve = Process()
        serve.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        serve.arguments = ["netns", "exec", namespace, CLI.binary, "serve", "--data-dir", cli.dataDirectory, "--api-port", "0", "--ec2-port", "0", "--s3-port", "0",
                           "--hypervisor", "test", "--host-network", "on", "--segmentation", "vxlan", "--physical-interface", "lo", "--apply", "\(cli.workDirectory)/cloud.yaml"]
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        serve.standardOutput = handle
        serve.standardError = handle
        try serve.run()
        let dataDirectory = cli.dataDirectory
        let stop: @Sendable () -> Void = {
            serve.interrupt()
            serve.waitUntilExit()
            if let pid = try? String(contentsOfFile: "\(dataDirectory)/dhcp/br100.pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), let value = Int32(pid) { kill(value, SIGKILL) }
        }
        do {
            try await scenario()
        } catch {
            _ = try? await offPool(stop)
            throw error
        }
        _ = try? await offPool(stop)

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

            let links = await Self.ip("-n", namespace, "-json", "-d", "link", "show").output
            let parsed = (try? JSONSerialization.jsonObject(with: Data(links.utf8)) as? [[String: Any]]) ?? []
            let segment = parsed.first { $0["ifname"] as? String == "vx100" }
            #expect(parsed.contains { $0["ifname"] as? String == "br100" } && segment?["master"] as? String == "br100", "the kernel holds br100 and vx100 in it: \(links.prefix(600))")
            #expect(await Self.ip("-n", namespace, "address", "show", "br100").output.contains("10.20.0.1/24"), "the gateway is on the bridge")
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
                back = await Self.ip("-n", namespace, "address", "show", "br100").output.contains("10.20.0.1/24")
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
}
