import Foundation
import StratusTestSupport
import Testing

@testable import StratusCompute
@testable import StratusNetwork

/// The `vlan` segmentation where 802.1Q exists: this host's kernel has no 8021q, so a TCG guest
/// of the tiny image (Debian's kernel, its 8021q module, this host's iproute2) runs the batch
/// `LinuxHostNetwork` makes for a VLAN network and prints the links back as `ip -json` (issue 14).
@Suite struct VLANGuestTests {
    @Test("in a TCG guest with 8021q, the reconciler's batch for a VLAN network makes uplink0.100 (802.1Q id 100 on a dummy uplink) enslaved to br100 with the gateway, read back with ip -json")
    func vlanInAGuest() async throws {
        let tiny: TinyImage
        do {
            tiny = try await TinyImage.build().image
        } catch {
            Issue.record("cannot build the tiny image on this machine: \(error)")
            return
        }
        let intent = NetworkIntent(name: "acme/default", bridge: "br100", segment: .vlan(id: 100, parent: "uplink0"), gateway: "10.0.100.1/24")
        // The parent a real host has (its uplink), then exactly what a convergence from nothing sends.
        let batch = ["link add uplink0 type dummy", "link set uplink0 up"] + LinuxHostNetwork.plan(intent, [:]).map(\.line)
        #expect(batch.contains("link add link uplink0 name uplink0.100 type vlan id 100"), "\(batch)")

        let root = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-vlan-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        // The guest runs the batch with iproute2 and prints the links back as JSON (kernel
        // messages kept off the console, so none lands inside the listing).
        let marker = "stratus-vlan:"
        let proof = """
            dmesg -n 1
            /usr/sbin/ip -batch /etc/stratus/vlan.batch && echo "\(marker) batch done" || echo "\(marker) batch failed"
            echo "\(marker) begin"; /usr/sbin/ip -json -d address show; echo; echo "\(marker) end"

            """
        try tiny.ramdisk(withProof: proof, files: [("/etc/stratus/vlan.batch", Data((batch.joined(separator: "\n") + "\n").utf8))])
            .write(to: URL(fileURLWithPath: "\(root)/initrd.cpio"))
        let guest = try await ProofGuest.start(kernel: tiny.kernel, initrd: "\(root)/initrd.cpio", cmdline: TinyImage.cmdline, console: "\(root)/console.log")
        defer { guest.stop() }
        let text = try await guest.wait(for: "\(marker) end", timeout: .seconds(120))
        #expect(text.contains("\(marker) batch done"), "the guest ran the batch: \(text.suffix(1500))")
        guard let begin = text.range(of: "\(marker) begin"), let end = text.range(of: "\(marker) end", range: begin.upperBound..<text.endIndex) else {
            Issue.record("no link listing on the guest's console: \(text.suffix(1500))")
            return
        }
        // The listing is one line; kernel messages may come between the markers on lines of their own.
        let listing = text[begin.upperBound..<end.lowerBound]
        let json = listing.range(of: "[{").flatMap { open in listing.range(of: "}]", options: .backwards).map { String(listing[open.lowerBound..<$0.upperBound]) } } ?? ""
        #expect(!json.isEmpty, "the listing: \(text[begin.upperBound..<end.lowerBound].prefix(1500))")
        let links = (try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]]) ?? []
        let vlan = links.first { $0["ifname"] as? String == "uplink0.100" }
        let info = vlan?["linkinfo"] as? [String: Any]
        let data = info?["info_data"] as? [String: Any]
        #expect(info?["info_kind"] as? String == "vlan" && data?["protocol"] as? String == "802.1Q" && data?["id"] as? Int == 100, "uplink0.100 is an 802.1Q VLAN with id 100: \(vlan ?? [:])")
        #expect(vlan?["master"] as? String == "br100", "enslaved to br100: \(vlan ?? [:])")
        let bridge = links.first { $0["ifname"] as? String == "br100" }
        let addresses = (bridge?["addr_info"] as? [[String: Any]] ?? []).compactMap { address in (address["local"] as? String).map { "\($0)/\(address["prefixlen"] as? Int ?? 0)" } }
        #expect((bridge?["linkinfo"] as? [String: Any])?["info_kind"] as? String == "bridge" && addresses.contains("10.0.100.1/24"), "br100 is a bridge with the gateway: \(bridge ?? [:])")
    }
}
