import Foundation
import GRDB
import Hummingbird
import Logging
import ServiceLifecycle
import StratusModel
import StratusStore
import Testing

@testable import StratusEC2

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The metadata service on a loopback port: the instance whose fixed IP is 127.0.0.1 asks.
@Suite struct MetadataServiceTests {
    static let manifest = """
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
        metadata: {name: debian-12, project: acme}
        spec: {source: /var/lib/stratus/images/debian-12.qcow2}
        ---
        apiVersion: stratus/v1
        kind: KeyPair
        metadata: {name: deploy, project: acme}
        spec: {publicKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZ2Yk1cVpgZVDSkqMJYmfb0zI6D/6s8vGN0wVxyjG2k alice@laptop}
        ---
        apiVersion: stratus/v1
        kind: Instance
        metadata: {name: web-1, project: acme}
        spec: {image: debian-12, instanceType: m1.small, keyName: deploy, userData: "#cloud-config\\nhostname: web-1\\n"}
        ---
        apiVersion: stratus/v1
        kind: Instance
        metadata: {name: web-2, project: acme}
        spec: {image: debian-12, instanceType: m1.small}

        """

    func get(_ url: String) async throws -> (Int, String) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: url)!)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    @Test("an instance reads its id, type, zone, key, user data and listings; an unknown address gets 404")
    func metadata() async throws {
        let store = try Store(writer: DatabaseQueue())
        try store.apply(try ManifestLoader.load([ManifestSource(name: "m.yaml", data: Data(Self.manifest.utf8))]), options: ApplyOptions())
        _ = try await withService(store) { _ in "" }
    }

    /// Runs the service on a free port for the body, with web-1 holding `ip` as its fixed IP (as
    /// the compute reconciler claims it from the network's subnet; ComputeTests cover that part).
    func withService(_ store: Store, ip: String = "127.0.0.1", _ body: (Int) async throws -> String) async throws -> String {
        let key = ResourceKey(kind: .instance, project: "acme", name: "web-1")
        #expect(try store.allocate(pool: Store.fixedIPPool, candidates: [ip], owner: key) == ip)
        let instance = try #require(try store.get(key))
        let ports = AsyncStream<Int>.makeStream()
        let app = MetadataService(store: store).application(host: "127.0.0.1", port: 0, logger: Logger(label: "test")) { port in ports.continuation.yield(port) }
        let task = Task { try await app.runService() }
        defer { task.cancel() }
        var iterator = ports.stream.makeAsyncIterator()
        let port = try #require(await iterator.next())
        let url = "http://127.0.0.1:\(port)"
        if ip == "127.0.0.1" {
            #expect(try await get("\(url)/latest/meta-data/instance-id") == (200, instance.metadata.id ?? "-"))
            #expect(try await get("\(url)/latest/meta-data/instance-type").1 == "m1.small")
            #expect(try await get("\(url)/latest/meta-data/local-ipv4").1 == "127.0.0.1")
            #expect(try await get("\(url)/latest/meta-data/placement/availability-zone").1 == "nova")
            #expect(try await get("\(url)/latest/meta-data/ami-id").1.hasPrefix("ami-"))
            #expect(try await get("\(url)/latest/meta-data/public-keys/").1 == "0=deploy")
            #expect(try await get("\(url)/latest/meta-data/public-keys/0/openssh-key").1.hasPrefix("ssh-ed25519 AAAAC3"))
            #expect(try await get("\(url)/latest/user-data").1 == "#cloud-config\nhostname: web-1\n")
            let listing = try await get("\(url)/latest/meta-data/").1.split(separator: "\n")
            #expect(listing.contains("instance-id") && listing.contains("placement/") && listing.contains("public-keys/") && listing.contains("reservation-id"))
            #expect(try await get("\(url)/2009-04-04/meta-data/hostname").1 == "web-1")
            #expect(try await get("\(url)/latest/meta-data/no-such-key").0 == 404)
            _ = try store.delete([key])
            #expect(try await get("\(url)/latest/meta-data/instance-id").0 == 404, "a terminating instance is not served")
        } else {
            #expect(try await get("\(url)/latest/meta-data/instance-id").0 == 404, "no instance has the caller's address")
        }
        return try await body(port)
    }

    @Test("a caller whose address no instance has gets 404")
    func unknownCaller() async throws {
        let store = try Store(writer: DatabaseQueue())
        try store.apply(try ManifestLoader.load([ManifestSource(name: "m.yaml", data: Data(Self.manifest.utf8))]), options: ApplyOptions())
        _ = try await withService(store, ip: "10.0.0.5") { _ in "" }
    }
}
