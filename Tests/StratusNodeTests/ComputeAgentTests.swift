import Crypto
import Foundation
import StratusCompute
import StratusModel
import Testing

@testable import StratusNode

/// The node side of compute on real libvirt (a private test-driver node), with no store anywhere.
@Suite struct ComputeAgentTests {
    static func node() throws -> (InProcessTransport, LibvirtHypervisor) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-node-\(UUID().uuidString).xml").path
        try "<node><cpu><mhz>2000</mhz><model>t</model><nodes>1</nodes><sockets>1</sockets><cores>4</cores><threads>1</threads></cpu><memory>\(4096 * 1024)</memory></node>"
            .write(toFile: path, atomically: true, encoding: .utf8)
        let hypervisor = try LibvirtHypervisor(uri: "test://\(path)")
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-agent-\(UUID().uuidString)").path
        return (InProcessTransport.local(node: "n1", hypervisor: hypervisor, dataDirectory: data), hypervisor)
    }

    static func intent(generation: Int = 1, memoryMB: Int = 512, power: PowerState = .running) -> InstanceIntent {
        InstanceIntent(
            id: "i-0000beef", project: "acme", name: "web-1", generation: generation, memoryMB: memoryMB, vcpus: 1,
            image: ImageFiles(source: "/images/debian.qcow2"), powerState: power,
            nic: NICIntent(network: "private", mac: "52:54:00:00:be:ef", ip: "10.0.0.2", bridge: "br100")
        )
    }

    @Test("an intent becomes a running domain named after the instance, with its owner, generation and MAC")
    func converge() async throws {
        let (transport, hypervisor) = try Self.node()
        let report = try await transport.converge(Self.intent(), on: "n1")
        #expect(report == InstanceReport(id: "i-0000beef", node: "n1", domain: "stratus-i-0000beef", state: .running, generation: 1, settled: true, bridge: "br100"))
        let domain = try #require(try await hypervisor.domain(named: "stratus-i-0000beef"))
        #expect(domain.owner?.key == ResourceKey(kind: .instance, project: "acme", name: "web-1") && domain.owner?.generation == 1)
        #expect(try await hypervisor.xml(of: "stratus-i-0000beef")?.contains("52:54:00:00:be:ef") == true)
        let again = try await transport.converge(Self.intent(), on: "n1")
        #expect(again == report, "converging the same intent again changes nothing")
    }

    @Test("instance directories are owner-only, even under a data directory that is not")
    func directoryModes() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-agent-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: data) }
        try FileManager.default.createDirectory(atPath: data + "/instances", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let (_, hypervisor) = try Self.node()
        let transport = InProcessTransport.local(node: "n1", hypervisor: hypervisor, dataDirectory: data)
        _ = try await transport.converge(Self.intent(), on: "n1")
        for path in [data + "/instances", data + "/instances/i-0000beef"] {
            let mode = try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
            #expect(mode == 0o700, "\(path): \(String(mode, radix: 8))")
        }
    }

    @Test("a relative data directory gives the domain absolute paths: QEMU does not run in this process's directory")
    func absolutePaths() async throws {
        let absolute = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-agent-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: absolute) }
        // The same directory, named relative to the working directory (make run's `.stratus` is).
        let depth = FileManager.default.currentDirectoryPath.split(separator: "/").count
        let relative = String(repeating: "../", count: depth) + absolute.dropFirst()
        let (_, hypervisor) = try Self.node()
        _ = try await InProcessTransport.local(node: "n1", hypervisor: hypervisor, dataDirectory: relative).converge(Self.intent(), on: "n1")
        let xml = try #require(try await hypervisor.xml(of: "stratus-i-0000beef"))
        #expect(xml.contains("<source path='\(absolute)/instances/i-0000beef/console.log'/>") || xml.contains("<source path=\"\(absolute)/instances/i-0000beef/console.log\"/>"), "\(xml)")
        #expect(FileManager.default.fileExists(atPath: "\(absolute)/instances/i-0000beef"))
    }

    @Test("a new generation that needs a restart is reported until the domain restarts; stopped means stopped")
    func generations() async throws {
        let (transport, _) = try Self.node()
        _ = try await transport.converge(Self.intent(), on: "n1")
        let bigger = try await transport.converge(Self.intent(generation: 2, memoryMB: 1024), on: "n1")
        #expect(bigger.restartRequiredFrom == 1 && bigger.settled)
        let stopped = try await transport.converge(Self.intent(generation: 3, memoryMB: 1024, power: .stopped), on: "n1")
        #expect(stopped.state == .shutoff && stopped.settled && stopped.restartRequiredFrom == nil)
        let started = try await transport.converge(Self.intent(generation: 3, memoryMB: 1024), on: "n1")
        #expect(started.state == .running && started.restartRequiredFrom == nil)
    }

    @Test("removal, listings and events speak in instance ids; nothing to remove is not an error")
    func removeAndObserve() async throws {
        let (transport, hypervisor) = try Self.node()
        let events = transport.events()
        _ = try await transport.converge(Self.intent(), on: "n1")
        #expect(try await transport.domainStates(on: "n1")["stratus-i-0000beef"] == .running)
        #expect(try await transport.domains(on: "n1").compactMap(\.owner?.id) == ["i-0000beef"])
        try await hypervisor.destroy("stratus-i-0000beef")  // out of band
        let waiter = Task { () -> NodeEvent? in
            for await event in events where event.kind.endsGuest { return event }
            return nil
        }
        let deadline = Task { try await Task.sleep(for: .seconds(60)); waiter.cancel() }
        let seen = await waiter.value
        deadline.cancel()
        #expect(seen == NodeEvent(node: "n1", instanceId: "i-0000beef", kind: .stopped))
        try await transport.remove(instance: "i-0000beef", on: "n1")
        try await transport.remove(instance: "i-0000beef", on: "n1")
        #expect(try await hypervisor.domain(named: "stratus-i-0000beef") == nil)
    }

    @Test("a node no agent answers for is unreachable, with what that means")
    func unreachable() async throws {
        let (transport, _) = try Self.node()
        #expect(transport.nodes == ["n1"])
        await #expect(throws: NodeError(.unreachable, "placed on n2, whose agent converges it; no agent of n2 is connected to this controller")) {
            try await transport.converge(Self.intent(), on: "n2")
        }
        let report = try await transport.report(of: "n1")
        #expect(report.memoryMB == 4096 && report.vcpus == 4 && report.domainType == "test")
    }
}

@Suite struct ImageCacheTests {
    @Test("the image cache copies an object once, verified: a wrong size or MD5 leaves no cache entry; a local path is used as it is")
    func verifiedCopies() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-cache-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let source = "\(directory)/object"
        let bytes = Data((0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try bytes.write(to: URL(fileURLWithPath: source))
        let md5 = Insecure.MD5.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
        let cache = ImageCache(dataDirectory: "\(directory)/data")
        let location = "s3://images/disk.raw"

        #expect(throws: NodeError.self) { try cache.local(location, objects: [location: ImageObject(path: source, size: Int64(bytes.count), md5: String(repeating: "0", count: 32))]) }
        #expect(throws: NodeError.self) { try cache.local(location, objects: [location: ImageObject(path: source, size: 5, md5: md5)]) }
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: "\(directory)/data/images")) ?? []).isEmpty, "a failed copy leaves nothing behind")

        let cached = try cache.local(location, objects: [location: ImageObject(path: source, size: Int64(bytes.count), md5: md5)])
        #expect(cached == "\(directory)/data/images/\(md5)" && FileManager.default.contents(atPath: cached) == bytes)
        try FileManager.default.removeItem(atPath: source)
        #expect(try cache.local(location, objects: [location: ImageObject(path: source, size: Int64(bytes.count), md5: md5)]) == cached, "the second instance uses the cache")
        #expect(try cache.local("/images/local.qcow2", objects: nil) == "/images/local.qcow2")
    }
}
