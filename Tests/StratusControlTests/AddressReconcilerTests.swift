import Foundation
import GRDB
import StratusModel
import StratusStore
import Testing

@testable import StratusControl

/// Addresses and security groups without host networking: allocated and shown, and saying that
/// nothing is NATed or filtered (issue 14, part 7). With host networking: `HostNetworkTests`.
@Suite struct AddressReconcilerTests {
    static let cloud = """
        apiVersion: stratus/v1
        kind: User
        metadata: {name: alice}
        spec: {}
        ---
        apiVersion: stratus/v1
        kind: Project
        metadata: {name: acme}
        spec: {manager: alice}
        ---
        apiVersion: stratus/v1
        kind: Address
        metadata: {name: a, project: acme}
        spec: {}
        ---
        apiVersion: stratus/v1
        kind: Address
        metadata: {name: b, project: acme}
        spec: {}
        ---
        apiVersion: stratus/v1
        kind: Address
        metadata: {name: c, project: acme}
        spec: {}
        ---
        apiVersion: stratus/v1
        kind: SecurityGroup
        metadata: {name: web, project: acme}
        spec: {ingress: [{protocol: tcp, fromPort: 80, toPort: 80}]}
        """

    @Test("without host networking addresses take the pool's IPs in order and an exhausted pool is AddressLimitExceeded; groups and the node say HostNetworkUnavailable")
    func withoutHostNetwork() async throws {
        let store = try Store(writer: DatabaseQueue())
        try store.apply(try ManifestLoader.load([ManifestSource(name: "cloud.yaml", data: Data(Self.cloud.utf8))]), options: ApplyOptions())
        guard case .success(let range) = IPv4Network.parse("198.51.100.0/30") else { return }
        let reconciler = AddressReconciler(store: store, publicRange: range, firewall: nil)
        func reconcile(_ kind: Kind, _ name: String) async throws -> ReconcileResult {
            await reconciler.reconcile(try #require(try store.get(ResourceKey(kind: kind, project: "acme", name: name))))
        }
        guard case .done(let a) = try await reconcile(.address, "a"), case .done(let b) = try await reconcile(.address, "b") else {
            Issue.record("the first two addresses of a /30 are allocated")
            return
        }
        #expect(a.details["publicIp"]?.stringValue == "198.51.100.1" && b.details["publicIp"]?.stringValue == "198.51.100.2")
        #expect(a.phase == "Allocated" && a.condition(.ready)?.status == .true, "\(a)")
        guard case .failed(let reason, let message, _) = try await reconcile(.address, "c") else {
            Issue.record("a third address of a /30 cannot be allocated")
            return
        }
        #expect(reason == .addressLimitExceeded && message.contains("198.51.100.0/30"), "\(message)")
        guard case .done(let group) = try await reconcile(.securityGroup, "web") else {
            Issue.record("a group without host networking is still recorded")
            return
        }
        #expect(group.phase == "Pending" && group.condition(.ready)?.reason == .hostNetworkUnavailable, "\(group)")
        let node = await NetworkReconciler(store: store, host: nil).nodeDetails()
        #expect(node["hostNetwork"]?.hasPrefix("HostNetworkUnavailable") == true, "\(node)")
    }

    @Test("a Network without a CIDR gets the /24 of the private range its VLAN id numbers; one with a CIDR keeps it")
    func subnetsFromThePrivateRange() async throws {
        let store = try Store(writer: DatabaseQueue())
        let text = """
            apiVersion: stratus/v1
            kind: User
            metadata: {name: alice}
            spec: {}
            ---
            apiVersion: stratus/v1
            kind: Project
            metadata: {name: acme}
            spec: {manager: alice}
            ---
            apiVersion: stratus/v1
            kind: Network
            metadata: {name: auto, project: acme}
            spec: {}
            ---
            apiVersion: stratus/v1
            kind: Network
            metadata: {name: fixed, project: acme}
            spec: {cidr: 192.168.7.0/24, vlan: 300}
            """
        try store.apply(try ManifestLoader.load([ManifestSource(name: "n.yaml", data: Data(text.utf8))]), options: ApplyOptions())
        guard case .success(let range) = IPv4Network.parse("172.16.0.0/12") else { return }
        let reconciler = NetworkReconciler(store: store, host: nil, privateRange: range)
        guard case .done(let auto) = await reconciler.reconcile(try #require(try store.get(ResourceKey(kind: .network, project: "acme", name: "auto")))),
              case .done(let fixed) = await reconciler.reconcile(try #require(try store.get(ResourceKey(kind: .network, project: "acme", name: "fixed")))) else {
            Issue.record("both networks reconcile")
            return
        }
        #expect(auto.details["vlan"]?.stringValue == "100" && auto.details["cidr"]?.stringValue == "172.16.100.0/24", "\(auto.details)")
        #expect(fixed.details["cidr"]?.stringValue == "192.168.7.0/24")
        #expect(NetworkSpec.slice(of: range, vlan: 4095)?.description == "172.31.255.0/24")
        #expect(NetworkSpec.slice(of: range, vlan: 4096) == nil, "a /12 holds 4,096 /24s")
    }
}
