import Foundation
import StratusModel
import Testing

@testable import StratusCompute

/// A private libvirt test-driver node (real libvirt, in-process), so parallel tests never share domains.
func privateTestNode(memoryMB: Int = 8192, cpus: Int = 4) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-node-\(UUID().uuidString).xml").path
    let xml = """
        <node>
          <cpu><mhz>2000</mhz><model>stratus-test</model><nodes>1</nodes><sockets>1</sockets><cores>\(cpus)</cores><threads>1</threads></cpu>
          <memory>\(memoryMB * 1024)</memory>
        </node>
        """
    try xml.write(toFile: path, atomically: true, encoding: .utf8)
    return "test://\(path)"
}

@Suite struct LibvirtHypervisorTests {
    @Test("a defined domain starts, is listed with its Stratus owner, and goes away when destroyed and undefined")
    func lifecycle() async throws {
        let hypervisor = try LibvirtHypervisor(uri: try privateTestNode())
        #expect(hypervisor.domainType == "test")
        let owner = DomainOwner(project: "acme", name: "web-1", id: "i-0000abcd", generation: 3)
        let definition = DomainDefinition(name: "stratus-i-0000abcd", type: hypervisor.domainType, memoryMB: 512, vcpus: 1, consoleLog: "/tmp/x.log", owner: owner)
        try await hypervisor.define(xml: DomainXML.render(definition))
        #expect(try await hypervisor.domain(named: "stratus-i-0000abcd")?.state == .shutoff)
        try await hypervisor.start("stratus-i-0000abcd")
        let listed = try await hypervisor.listDomains().first { $0.name == "stratus-i-0000abcd" }
        #expect(listed?.state == .running)
        #expect(listed?.owner?.key == owner.key)
        #expect(listed?.owner?.generation == 3)
        #expect(listed?.owner?.config == DomainXML.configDigest(of: definition))
        try await hypervisor.destroy("stratus-i-0000abcd")
        try await hypervisor.undefine("stratus-i-0000abcd")
        #expect(try await hypervisor.domain(named: "stratus-i-0000abcd") == nil)
    }

    @Test("node capacity comes from libvirt")
    func capacity() async throws {
        let hypervisor = try LibvirtHypervisor(uri: try privateTestNode(memoryMB: 4096, cpus: 6))
        let capacity = try await hypervisor.nodeInfo()
        #expect(capacity.memoryMB == 4096)
        #expect(capacity.vcpus == 6)
    }

    @Test("libvirt's own message reaches the caller")
    func errors() async throws {
        let hypervisor = try LibvirtHypervisor(uri: try privateTestNode())
        let error = try await #require(throws: HypervisorError.self) { try await hypervisor.start("nope") }
        #expect(error.description.contains("nope"))
        #expect(throws: HypervisorError.self) { try LibvirtHypervisor(uri: "bogus:///x") }
    }

    @Test("domain XML escapes what it embeds and its owner reads back")
    func xml() {
        let owner = DomainOwner(project: "p", name: "a'b", id: "i-1", generation: 1)
        let xml = DomainXML.render(DomainDefinition(name: "n<&>", type: "qemu", memoryMB: 256, vcpus: 1, kernel: "/k", initrd: "/i", cmdline: "console=ttyS0 x='1'", owner: owner))
        #expect(xml.contains("<name>n&lt;&amp;&gt;</name>"))
        #expect(xml.contains("<cmdline>console=ttyS0 x=&apos;1&apos;</cmdline>"))
        var expected = owner
        expected.config = DomainXML.owner(in: xml)?.config ?? "missing"
        #expect(!expected.config.isEmpty && expected.config != "missing")
        #expect(DomainXML.owner(in: xml) == expected)
        #expect(DomainXML.owner(in: xml.replacingOccurrences(of: "'", with: "\"")) == expected)
        let bigger = DomainDefinition(name: "n<&>", type: "qemu", memoryMB: 512, vcpus: 1, kernel: "/k", initrd: "/i", cmdline: "console=ttyS0 x='1'", owner: owner)
        #expect(DomainXML.configDigest(of: bigger) != expected.config)
        var renamed = bigger
        renamed.owner.generation = 9
        #expect(DomainXML.configDigest(of: renamed) == DomainXML.configDigest(of: bigger))
    }
}

/// `qemu-img` as the agent runs it (posix_spawn, not Foundation's Process).
@Suite struct QemuImgTests {
    @Test("an overlay on a raw image is a qcow2 file naming its backing; a missing backing is qemu-img's own error")
    func overlay() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-qemuimg-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let backing = directory + "/base.raw"
        FileManager.default.createFile(atPath: backing, contents: Data(count: 1 << 20))
        try QemuImg.createOverlay(at: directory + "/disk.qcow2", backing: backing, format: "raw")
        let header = try #require(FileManager.default.contents(atPath: directory + "/disk.qcow2"))
        #expect(header.prefix(4) == Data([0x51, 0x46, 0x49, 0xfb]), "the qcow2 magic")
        #expect(header.range(of: Data(backing.utf8)) != nil, "the overlay names its backing file")
        let missing = #expect(throws: HypervisorError.self) { try QemuImg.createOverlay(at: directory + "/other.qcow2", backing: directory + "/absent.raw", format: "raw") }
        #expect(missing?.message.contains("absent.raw") == true, "\(String(describing: missing))")
        #expect(try ChildProcess.run("/bin/sh", ["-c", "kill -9 $$"]).status == 137, "a child killed by SIGKILL reports 128 + 9")
        // Both streams are read as they come: 200 KB on stderr before any stdout must not block the child.
        let both = try ChildProcess.run("/bin/sh", ["-c", "head -c 200000 /dev/zero | tr '\\0' e >&2; echo out; exit 3"])
        #expect(both.status == 3 && both.output == "out\n" && both.errors.count == 200_000)
    }
}
