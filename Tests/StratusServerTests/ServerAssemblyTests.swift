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
            let deadline = ContinuousClock.now + .seconds(20)
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
}
