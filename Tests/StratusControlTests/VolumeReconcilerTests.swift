import Foundation
import GRDB
import StratusModel
import StratusStorage
import StratusStore
import Testing

@testable import StratusControl

/// Volumes without an AoE interface: addressed, and saying that nothing is exported. With one:
/// `VolumeExportTests` (real vblade in namespaces).
@Suite struct VolumeReconcilerTests {
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
        kind: Instance
        metadata: {name: web-1, project: acme}
        spec: {image: tiny, instanceType: m1.tiny}
        ---
        apiVersion: stratus/v1
        kind: Image
        metadata: {name: tiny, project: acme}
        spec: {source: /nonexistent/disk.raw, format: raw}
        ---
        apiVersion: stratus/v1
        kind: Volume
        metadata: {name: a, project: acme}
        spec: {sizeGB: 1}
        ---
        apiVersion: stratus/v1
        kind: Volume
        metadata: {name: b, project: acme}
        spec: {sizeGB: 2}
        """

    @Test("each volume gets the next free AoE address (e1.0, e1.1, …), keeps it, and says AoEInterfaceNotConfigured; deleting one frees its address")
    func withoutStorage() async throws {
        let store = try Store(writer: DatabaseQueue())
        try store.apply(try ManifestLoader.load([ManifestSource(name: "cloud.yaml", data: Data(Self.cloud.utf8))]), options: ApplyOptions())
        let reconciler = VolumeReconciler(store: store, storage: nil, node: "n1")
        func volume(_ name: String) throws -> StoredResource { try #require(try store.get(ResourceKey(kind: .volume, project: "acme", name: name))) }
        guard case .done(let a) = await reconciler.reconcile(try volume("a")), case .done(let b) = await reconciler.reconcile(try volume("b")),
            case .done(let again) = await reconciler.reconcile(try volume("a"))
        else {
            Issue.record("volumes without storage are recorded, not failed")
            return
        }
        #expect(a.details["aoe"]?.stringValue == "e1.0" && b.details["aoe"]?.stringValue == "e1.1" && again.details["aoe"]?.stringValue == "e1.0", "\(a.details) \(b.details)")
        #expect(a.phase == "Pending" && a.condition(.ready)?.reason == .aoeInterfaceNotConfigured && a.details["storageNode"]?.stringValue == "n1", "\(a)")
        #expect(a.condition(.ready)?.message?.contains("--aoe-interface") == true)
        #expect(await reconciler.finalize(try volume("a")) == .done(ResourceStatus()))
        #expect(try store.allocation(pool: VolumeReconciler.aoePool, owner: ResourceKey(kind: .volume, project: "acme", name: "a")) == nil, "a deleted volume no longer holds its address")
        // Its address is quarantined: the next volume does not get e1.0 at once; after the quarantine it does.
        #expect(try store.allocate(pool: VolumeReconciler.aoePool, candidates: VolumeReconciler.addresses, owner: ResourceKey(kind: .volume, project: "acme", name: "c"), quarantine: .seconds(600)) == "e1.2",
                "a freed address is not given out during its quarantine")
        try await Task.sleep(for: .milliseconds(1100))  // stored times have whole seconds
        #expect(try store.allocate(pool: VolumeReconciler.aoePool, candidates: VolumeReconciler.addresses, owner: ResourceKey(kind: .volume, project: "acme", name: "d"), quarantine: .milliseconds(5)) == "e1.0",
                "and is given out again after it")
        #expect(VolumeReconciler.parse("e65534.254")! == (65534, 254) && VolumeReconciler.parse("e1") == nil && VolumeReconciler.parse("e1.255") == nil)
    }

    @Test("a volume a guest still holds is not deleted under it: finalize waits until the instance's node no longer reports the disk")
    func deletionWaitsForTheGuest() async throws {
        let store = try Store(writer: DatabaseQueue())
        try store.apply(try ManifestLoader.load([ManifestSource(name: "cloud.yaml", data: Data(Self.cloud.utf8))]), options: ApplyOptions())
        let key = ResourceKey(kind: .volume, project: "acme", name: "a")
        let instance = ResourceKey(kind: .instance, project: "acme", name: "web-1")
        let id = try #require(try store.get(key)?.metadata.id)
        _ = try store.updateStatus(key, ResourceStatus(phase: "Attached", details: ["aoe": .string("e1.0"), "attachedTo": .string("web-1")]))
        _ = try store.updateStatus(instance, ResourceStatus(phase: "Running", details: ["volumes": .object([id: .string("detaching: the guest has not released it yet")])]))
        let reconciler = VolumeReconciler(store: store, storage: nil, node: "n1")
        guard case .failed(let reason, let message, let retryable) = await reconciler.finalize(try #require(try store.get(key))) else {
            Issue.record("finalize must wait while the guest holds the disk")
            return
        }
        #expect(reason == .storageError && retryable && message.contains("still in web-1's domain"), "\(message)")
        _ = try store.updateStatus(instance, ResourceStatus(phase: "Running", details: [:]))
        #expect(await reconciler.finalize(try #require(try store.get(key))) == .done(ResourceStatus()), "released: the volume goes")
    }

    @Test("a volume only grows: applying a smaller sizeGB is refused and changes nothing")
    func shrinkRefused() throws {
        let store = try Store(writer: DatabaseQueue())
        try store.apply(try ManifestLoader.load([ManifestSource(name: "cloud.yaml", data: Data(Self.cloud.utf8))]), options: ApplyOptions())
        let smaller = Self.cloud.replacingOccurrences(of: "spec: {sizeGB: 2}", with: "spec: {sizeGB: 1}")
        #expect {
            try store.apply(try ManifestLoader.load([ManifestSource(name: "cloud.yaml", data: Data(smaller.utf8))]), options: ApplyOptions())
        } throws: { error in "\(error)".contains("spec.sizeGB cannot shrink (2 → 1 GB)") }
        guard case .volume(let spec)? = try store.get(ResourceKey(kind: .volume, project: "acme", name: "b"))?.resource.spec else {
            Issue.record("volume b is stored")
            return
        }
        #expect(spec.sizeGB == 2)
        let larger = Self.cloud.replacingOccurrences(of: "spec: {sizeGB: 2}", with: "spec: {sizeGB: 3}")
        _ = try store.apply(try ManifestLoader.load([ManifestSource(name: "cloud.yaml", data: Data(larger.utf8))]), options: ApplyOptions())
    }

    @Test("a resync removes snapshot files no Snapshot names, and half-made copies, and keeps the rest")
    func snapshotSweep() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/vblade") else {
            Issue.record("skipped: vblade is not installed (make install-deps installs it), so no export can be made")
            return
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-snapshots-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let export = try FileBlockExport(directory: directory, interface: "lo")
        try FileManager.default.createDirectory(atPath: "\(directory)/snapshots", withIntermediateDirectories: true)
        let store = try Store(writer: DatabaseQueue())
        try store.apply(try ManifestLoader.load([ManifestSource(name: "cloud.yaml", data: Data((Self.cloud + """

            ---
            apiVersion: stratus/v1
            kind: Snapshot
            metadata: {name: kept, project: acme}
            spec: {volume: a}

            """).utf8))]), options: ApplyOptions())
        let kept = try #require(try store.get(ResourceKey(kind: .snapshot, project: "acme", name: "kept"))?.metadata.id)
        for name in ["\(kept).img", "snap-0000dead.img", "snap-0000beef.img.partial", "notes.txt"] {
            #expect(FileManager.default.createFile(atPath: "\(directory)/snapshots/\(name)", contents: Data("x".utf8)))
        }
        let reconciler = SnapshotReconciler(store: store, export: export)
        let removed = await reconciler.sweep(try store.list(kind: .snapshot))
        #expect(removed == ["snap-0000dead"], "\(removed)")
        let left = try FileManager.default.contentsOfDirectory(atPath: "\(directory)/snapshots").sorted()
        #expect(left == ["\(kept).img", "notes.txt"].sorted(), "the named snapshot and a file that is no snapshot stay: \(left)")
    }
}
