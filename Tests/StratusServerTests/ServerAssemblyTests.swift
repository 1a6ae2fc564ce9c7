import Foundation
import Logging
import ServiceLifecycle
import StratusAccess
import StratusModel
import StratusStore
import StratusTestSupport
import Testing

@testable import StratusServer

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The server assembled in-process, as `stratus serve` assembles it.
@Suite struct ServerAssemblyTests {
    @Test("a server built from a configuration binds free ports, writes serve.json, converges an instance and stops gracefully")
    func buildAndRun() async throws {
        let directory = NSTemporaryDirectory() + "stratus-server-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let manifest = (directory as NSString).appendingPathComponent("vm.yaml")
        try """
            apiVersion: stratus/v1
            kind: User
            metadata: {name: alice}
            spec: {projects: [{project: acme, roles: [sysadmin]}]}
            ---
            apiVersion: stratus/v1
            kind: Project
            metadata: {name: acme}
            spec: {manager: alice}
            ---
            apiVersion: stratus/v1
            kind: Image
            metadata: {name: debian, project: acme}
            spec: {source: /images/debian.qcow2}
            ---
            apiVersion: stratus/v1
            kind: Instance
            metadata: {name: web-1, project: acme}
            spec: {image: debian, instanceType: m1.tiny}

            """.write(toFile: manifest, atomically: true, encoding: .utf8)
        let configuration = try ServerConfiguration.resolve(
            arguments: ["--data-dir", directory, "--api-port", "0", "--ec2-port", "0", "--s3-port", "0", "--node-name", "n1", "--hypervisor", try privateNodeURI(), "--apply", manifest],
            environment: [:]
        )
        let server = try await StratusServer.build(configuration, logger: Logger(label: "test"))
        #expect(server.initialApply?.changes.filter { $0.action == .create }.count == 4)
        #expect(server.node == "n1")
        try await withThrowingTaskGroup(of: Void.self) { group in
            let services = ServiceGroup(configuration: .init(services: server.services.map { .init(service: $0) }, logger: Logger(label: "test")))
            group.addTask { try await services.run() }
            let info = await server.endpoints.listening()
            #expect(info.pid == Int(ProcessInfo.processInfo.processIdentifier))
            #expect(ServeInfo.read(dataDirectory: directory) == info)
            let mode = try FileManager.default.attributesOfItem(atPath: ServeInfo.path(dataDirectory: directory))[.posixPermissions] as? Int
            #expect(mode == 0o600, "serve.json is owner-only")
            let api = try #require(info.apiURL.flatMap(URL.init(string:)))
            #expect(info.apiPort != 8774 && info.apiPort != 0 && info.ec2Port != 0)
            let (body, response) = try await URLSession.shared.data(from: api.appendingPathComponent("healthz"))
            #expect((response as? HTTPURLResponse)?.statusCode == 200 && String(decoding: body, as: UTF8.self) == "ok\n")
            let deadline = ContinuousClock.now + .seconds(60)
            var phase: String?
            while ContinuousClock.now < deadline {
                phase = try server.store.get(ResourceKey(kind: .instance, project: "acme", name: "web-1"))?.resource.status?.phase
                if phase == "Running" { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(phase == "Running")
            await services.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    }

    /// This node's status right after `build`, before any service runs.
    static func nodeDetails(_ server: StratusServer) throws -> (memoryMB: Int?, vcpus: Int?) {
        let details = try server.store.get(ResourceKey(kind: .node, project: nil, name: server.node))?.resource.status?.details
        func int(_ key: String) -> Int? { if case .int(let value)? = details?[key] { value } else { nil } }
        return (int("memoryMB"), int("vcpus"))
    }

    static func temporaryDirectory() throws -> String {
        let directory = NSTemporaryDirectory() + "stratus-server-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test("--hypervisor test reports this host's memory and CPUs, recorded before the controller starts")
    func simulatedNodeIsThisHost() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = try ServerConfiguration.resolve(arguments: ["--data-dir", directory, "--api-port", "0", "--ec2-port", "0", "--s3-port", "0", "--node-name", "n1", "--hypervisor", "test"], environment: [:])
        let server = try await StratusServer.build(configuration, logger: Logger(label: "test"))
        let (memory, vcpus) = try Self.nodeDetails(server)
        let physicalMB = (sysconf(Int32(_SC_PHYS_PAGES)) * sysconf(Int32(_SC_PAGESIZE))) >> 20
        let reported = try #require(memory, "the node's capacity is in its status as soon as build returns")
        #expect(reported != 3072, "not the test driver's 3 GB fixture (unless this host has exactly that)")
        #expect(abs(reported - physicalMB) <= max(64, physicalMB / 20), "\(reported) MB reported, \(physicalMB) MB physical")
        #expect(vcpus == ProcessInfo.processInfo.activeProcessorCount)
    }

    @Test("--node-capacity is what the node reports, whatever the hypervisor says")
    func declaredCapacity() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = try ServerConfiguration.resolve(
            arguments: ["--data-dir", directory, "--api-port", "0", "--ec2-port", "0", "--s3-port", "0", "--node-name", "n1", "--hypervisor", "test", "--node-capacity", "cpus=16,memory=64Gi"],
            environment: [:]
        )
        let server = try await StratusServer.build(configuration, logger: Logger(label: "test"))
        let (memory, vcpus) = try Self.nodeDetails(server)
        #expect(memory == 65_536 && vcpus == 16)
        // Tens of the smallest instances fit: 64 GB × 1.5 (the RAM allocation ratio) / 512 MB.
        #expect(Int(Double(try #require(memory)) * 1.5) / 512 >= 20)
    }

    @Test("the first reconcile after start places every instance: no Unschedulable warning, since the node's capacity is known first")
    func noUnschedulableAtStart() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = (directory as NSString).appendingPathComponent("vms.yaml")
        var text = """
            apiVersion: stratus/v1
            kind: User
            metadata: {name: alice}
            spec: {projects: [{project: acme, roles: [sysadmin]}]}
            ---
            apiVersion: stratus/v1
            kind: Project
            metadata: {name: acme}
            spec: {manager: alice, quotas: {instances: 20}}
            ---
            apiVersion: stratus/v1
            kind: Image
            metadata: {name: debian, project: acme}
            spec: {source: /images/debian.qcow2}

            """
        let names = (1...12).map { "vm-\($0)" }
        for name in names {
            text += "---\napiVersion: stratus/v1\nkind: Instance\nmetadata: {name: \(name), project: acme}\nspec: {image: debian, instanceType: m1.tiny}\n"
        }
        try text.write(toFile: manifest, atomically: true, encoding: .utf8)
        let configuration = try ServerConfiguration.resolve(
            arguments: ["--data-dir", directory, "--api-port", "0", "--ec2-port", "0", "--s3-port", "0", "--node-name", "n1", "--hypervisor", try privateNodeURI(), "--apply", manifest],
            environment: [:]
        )
        let server = try await StratusServer.build(configuration, logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            let services = ServiceGroup(configuration: .init(services: server.services.map { .init(service: $0) }, logger: Logger(label: "test")))
            group.addTask { try await services.run() }
            // A minute: twelve test-driver boots take well under a second alone, but the whole
            // suite beside TCG guests on two cores once needed more than 30 s.
            let deadline = ContinuousClock.now + .seconds(60)
            var running = 0
            while ContinuousClock.now < deadline {
                running = try server.store.list(kind: .instance).filter { $0.resource.status?.phase == "Running" }.count
                if running == names.count { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(running == names.count)
            await services.triggerGracefulShutdown()
            try await group.waitForAll()
        }
        let warnings = try server.store.events().filter { $0.type == "Warning" }
        #expect(!warnings.contains { $0.reason == "Unschedulable" || $0.message.contains("capacity not reported") }, "\(warnings.map { "\($0.kind) \($0.name) \($0.reason): \($0.message)" })")
    }
}
