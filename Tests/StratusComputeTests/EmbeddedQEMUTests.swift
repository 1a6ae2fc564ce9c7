import Foundation
import Testing

@testable import StratusCompute

/// The embedded driver's root: absolute, and short enough for the guests' monitor sockets.
@Suite struct EmbeddedQEMUTests {
    @Test("a root too long for a UNIX socket path is reached through a short link to it; a short one is used as is")
    func shortRoot() throws {
        let top = NSTemporaryDirectory() + "stratus-embed-test-\(UUID().uuidString)"
        let long = "\(top)/a-data-directory-with-a-long-name/libvirt"
        defer { try? FileManager.default.removeItem(atPath: top) }
        let uri = try EmbeddedQEMU.prepare(root: long)
        let root = try #require(uri.split(separator: "=", maxSplits: 1).last.map(String.init))
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(long.utf8.count > EmbeddedQEMU.longestRoot && root.utf8.count <= EmbeddedQEMU.longestRoot, "\(root)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root) == long)
        #expect(EmbeddedQEMU.alias(of: long) == root)
        #expect(FileManager.default.fileExists(atPath: "\(root)/etc/qemu.conf"), "qemu.conf is reached through the link")
        #expect(try EmbeddedQEMU.prepare(root: long) == uri, "the same root gets the same link")
        // "root/lib/qemu/domain-N-<name>/monitor.sock" fits in sockaddr_un's 108 bytes with room for many domains.
        #expect("\(root)/lib/qemu/domain-99999-stratus-i-0a1b2c3d/monitor.sock".utf8.count < 108)

        try FileManager.default.removeItem(atPath: root)
        try FileManager.default.createSymbolicLink(atPath: root, withDestinationPath: "/elsewhere")
        #expect(try EmbeddedQEMU.prepare(root: long) == uri)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root) == long, "a link to elsewhere is replaced")

        let short = "/tmp/se-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: short) }
        #expect(try EmbeddedQEMU.prepare(root: short) == "qemu:///embed?root=\(short)")
    }

    @Test("a relative root is made absolute: libvirt takes only absolute ones")
    func relativeRoot() throws {
        let name = "stratus-embed-relative-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: FileManager.default.currentDirectoryPath + "/" + name) }
        let uri = try EmbeddedQEMU.prepare(root: name)
        let root = try #require(uri.split(separator: "=", maxSplits: 1).last.map(String.init))
        #expect(root.hasPrefix("/"))
        if root.contains("stratus-embed-relative") {
            #expect(root == FileManager.default.currentDirectoryPath + "/" + name)
        } else {
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root) == FileManager.default.currentDirectoryPath + "/" + name)
            try? FileManager.default.removeItem(atPath: root)
        }
    }
}
