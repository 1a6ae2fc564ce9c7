import Foundation
import StratusCompute
import Testing

@testable import StratusNode

/// `--node-capacity`: what an operator says a node has, parsed once and reported instead of the hypervisor's figures.
@Suite struct DeclaredCapacityTests {
    @Test("cpus=N,memory=SIZE parses with Mi, Gi and Ti, either part alone, and prints back the same way")
    func parses() throws {
        #expect(try DeclaredCapacity(parsing: "cpus=16,memory=64Gi") == DeclaredCapacity(vcpus: 16, memoryMB: 65_536))
        #expect(try DeclaredCapacity(parsing: "memory=512Mi") == DeclaredCapacity(memoryMB: 512))
        #expect(try DeclaredCapacity(parsing: "memory=1Ti, cpus=2") == DeclaredCapacity(vcpus: 2, memoryMB: 1_048_576))
        #expect(try DeclaredCapacity(parsing: "cpus=4") == DeclaredCapacity(vcpus: 4))
        #expect("\(try DeclaredCapacity(parsing: "cpus=16,memory=64Gi"))" == "cpus=16,memory=64Gi")
        #expect("\(try DeclaredCapacity(parsing: "memory=1536Mi"))" == "memory=1536Mi")
    }

    @Test("a bad value says what is wrong and shows the expected form", arguments: [
        ("", "expected cpus=N,memory=SIZE like cpus=16,memory=64Gi"),
        ("cpus=lots", "cpus must be a whole number from 1 to 100000, got \"lots\""),
        ("cpus=0", "cpus must be a whole number"),
        ("memory=64GB", "memory must be a whole number with a unit, like 512Mi, 64Gi or 1Ti, got \"64GB\""),
        ("memory=64", "memory must be a whole number with a unit"),
        ("ram=4Gi", "unknown part \"ram\" (the parts are cpus and memory)"),
        ("cpus=2,cpus=4", "cpus is given twice"),
        ("16", "\"16\" is not name=value"),
        ("memory=99999999999999Ti", "more than any host has"),
    ])
    func refuses(text: String, message: String) {
        #expect {
            try DeclaredCapacity(parsing: text)
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test("a node agent reports the declared parts and keeps the hypervisor's for the rest")
    func reported() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-node-\(UUID().uuidString).xml").path
        try "<node><cpu><mhz>2000</mhz><model>t</model><nodes>1</nodes><sockets>1</sockets><cores>4</cores><threads>1</threads></cpu><memory>\(4096 * 1024)</memory></node>"
            .write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let hypervisor = try LibvirtHypervisor(uri: "test://\(path)")
        let data = NSTemporaryDirectory() + "stratus-agent-\(UUID().uuidString)"
        let declared = InProcessTransport.local(node: "n1", hypervisor: hypervisor, dataDirectory: data, capacity: try DeclaredCapacity(parsing: "cpus=64"))
        let report = try await declared.report(of: "n1")
        #expect(report.vcpus == 64 && report.memoryMB == 4096)
        let plain = try await InProcessTransport.local(node: "n1", hypervisor: hypervisor, dataDirectory: data).report(of: "n1")
        #expect(plain.vcpus == 4 && plain.memoryMB == 4096)
    }
}
