import Foundation
import GRDB
import StratusCompute
import StratusModel
import StratusNode
import StratusStore
import Testing

@testable import StratusControl

/// A real QEMU guest under libvirt's embedded driver (TCG), driven through the controller.
@Suite(.serialized) struct RealGuestTests {
    @Test("an Instance of the tiny image boots a real guest whose serial console shows its banner and login prompt; stopping and deleting tear it down")
    func bootsRealGuest() async throws {
        let files: TinyImage
        do {
            files = try await TinyImage.build().image  // the same builder as `stratus image build-tiny`
        } catch {
            Issue.record("cannot build the tiny image on this machine: \(error)")
            return
        }
        let root = "/tmp/stratus-qemu-\(UUID().uuidString.prefix(8))"
        let data = "\(root)/data"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let hypervisor = try LibvirtHypervisor(uri: try EmbeddedQEMU.prepare(root: "\(root)/libvirt"))
        #expect(hypervisor.domainType == "qemu" || hypervisor.domainType == "kvm")
        let store = try Store(writer: DatabaseQueue())
        try NodeReconciler.register("node-1", zone: "nova", in: store)
        let transport = InProcessTransport.local(node: "node-1", hypervisor: hypervisor, dataDirectory: data)
        let compute = ComputeReconciler(store: store, transport: transport, scheduler: Scheduler(store: store))
        let controller = Controller(
            store: store, reconcilers: [CatalogReconciler(), NodeReconciler(transport: transport), compute],
            pollInterval: .milliseconds(20), queue: WorkQueue(baseDelay: .milliseconds(100), maxDelay: .seconds(1))
        )
        let task = Task { try await controller.run() }
        var domainName: String?
        // Whatever happens, leave no QEMU process behind: cleaned up after the scenario, awaited
        // (a semaphore in a defer would hold a thread of the cooperative pool while it waits).
        func cleanUp() async {
            task.cancel()
            if let domainName {
                try? await hypervisor.destroy(domainName)
                try? await hypervisor.undefine(domainName)
            }
        }
        do {
            try await scenario(&domainName)
        } catch {
            await cleanUp()
            throw error
        }
        await cleanUp()

        func scenario(_ domainName: inout String?) async throws {
            let manifest = """
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
                kind: Image
                metadata: {name: tiny, project: acme}
                spec: {source: \(files.disk), format: raw, kernel: \(files.kernel), ramdisk: \(files.ramdisk), cmdline: "\(TinyImage.cmdline)"}
                ---
                apiVersion: stratus/v1
                kind: Instance
                metadata: {name: guest, project: acme}
                spec: {image: tiny, instanceType: m1.tiny}
                """
            let documents = try ManifestLoader.load([ManifestSource(name: "guest.yaml", data: Data(manifest.utf8))])
            try store.apply(documents, options: ApplyOptions())
            let key = ResourceKey(kind: .instance, project: "acme", name: "guest")
            #expect(try await eventually(timeout: .seconds(60)) { try store.get(key)?.displayPhase == "Running" }, "\(String(describing: (try? store.get(key))??.resource.status))")
            let instance = try #require(try store.get(key))
            let id = try #require(instance.metadata.id)
            domainName = ComputeReconciler.domainName(id: id)
            #expect(try await hypervisor.domain(named: domainName!)?.state == .running)
            let console = "\(data)/instances/\(id)/console.log"
            let booted = try await eventually(timeout: .seconds(90)) {
                let text = (try? String(contentsOfFile: console, encoding: .utf8)) ?? ""
                return text.contains(TinyImage.banner) && text.contains("stratus-tiny login:")
            }
            #expect(booted, "no banner and login prompt on the serial console: \((try? String(contentsOfFile: console, encoding: .utf8))?.suffix(2000) ?? "no console log")")

            let stopped = manifest.replacingOccurrences(of: "instanceType: m1.tiny}", with: "instanceType: m1.tiny, powerState: stopped}")
            try store.apply(try ManifestLoader.load([ManifestSource(name: "guest.yaml", data: Data(stopped.utf8))]), options: ApplyOptions())
            #expect(try await eventually(timeout: .seconds(30)) { try store.get(key)?.displayPhase == "Stopped" })
            #expect(try await hypervisor.domain(named: domainName!)?.state == .shutoff)

            _ = try store.delete([key])
            #expect(try await eventually(timeout: .seconds(30)) { try store.get(key) == nil })
            #expect(try await hypervisor.domain(named: domainName!) == nil)
            #expect(!FileManager.default.fileExists(atPath: "\(data)/instances/\(id)"))
        }
    }
}
