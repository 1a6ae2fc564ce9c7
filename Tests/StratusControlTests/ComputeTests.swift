import Foundation
import GRDB
import StratusCompute
import StratusModel
import StratusNode
import StratusStore
import StratusTestSupport
import Testing

@testable import StratusControl

/// A store, a real libvirt hypervisor and a running controller with the compute reconcilers.
struct ComputeHarness {
    let store: Store
    let hypervisor: LibvirtHypervisor
    let controller: Controller
    let task: Task<Void, any Error>
    let data: String

    init(uri: String? = nil, resync: Duration = .seconds(60), memoryMB: Int = 8192, networksManaged: Bool = false) throws {
        store = try Store(writer: DatabaseQueue())
        hypervisor = try LibvirtHypervisor(uri: try uri ?? privateNodeURI(memoryMB: memoryMB))
        data = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-data-\(UUID().uuidString)").path
        try NodeReconciler.register("node-1", zone: "nova", in: store)
        let transport = InProcessTransport.local(node: "node-1", hypervisor: hypervisor, dataDirectory: data)
        let compute = ComputeReconciler(store: store, transport: transport, scheduler: Scheduler(store: store), networksManaged: networksManaged)
        let controller = Controller(
            store: store, reconcilers: [CatalogReconciler(), NodeReconciler(transport: transport), compute] + (networksManaged ? [NetworkReconciler(store: store, host: nil)] : []),
            resyncInterval: resync, pollInterval: .milliseconds(10), queue: WorkQueue(baseDelay: .milliseconds(20), maxDelay: .milliseconds(200))
        )
        self.controller = controller
        task = Task { try await controller.run() }
    }

    func stop() async {
        task.cancel()
        _ = await task.result
    }

    func instance(_ name: String, project: String = "acme") throws -> StoredResource? {
        try store.get(ResourceKey(kind: .instance, project: project, name: name))
    }
}

func cloud(instances: [(String, String)], power: String = "running", project: String = "acme") -> [ManifestDocument] {
    var text = """
        apiVersion: stratus/v1
        kind: User
        metadata: {name: alice}
        spec: {}
        ---
        apiVersion: stratus/v1
        kind: Project
        metadata: {name: \(project)}
        spec: {manager: alice}
        ---
        apiVersion: stratus/v1
        kind: Image
        metadata: {name: debian, project: \(project)}
        spec: {source: /images/debian.qcow2}

        """
    for (name, type) in instances {
        text += "---\napiVersion: stratus/v1\nkind: Instance\nmetadata: {name: \(name), project: \(project)}\nspec: {image: debian, instanceType: \(type), powerState: \(power)}\n"
    }
    return try! ManifestLoader.load([ManifestSource(name: "cloud.yaml", data: Data(text.utf8))])
}

@Suite struct ComputeTests {
    @Test("applied instances become running libvirt domains with Ready=True and the current generation")
    func instancesRun() async throws {
        let harness = try ComputeHarness()
        try harness.store.apply(cloud(instances: [("web-1", "m1.small"), ("web-2", "m1.small"), ("db-1", "m1.medium")]), options: ApplyOptions())
        for name in ["web-1", "web-2", "db-1"] {
            #expect(try await eventually { try harness.instance(name)?.displayPhase == "Running" }, "\(name)")
            let instance = try #require(try harness.instance(name))
            #expect(instance.resource.status?.observedGeneration == instance.generation)
            #expect(instance.resource.status?.condition(.ready)?.status == .true)
            #expect(instance.resource.status?.condition(.ready)?.reason == .domainRunning)
            let domain = try #require(try await harness.hypervisor.domain(named: "stratus-\(instance.metadata.id!)"))
            #expect(domain.state == .running)
            #expect(domain.owner?.key == instance.key)
        }
        await harness.stop()
    }

    @Test("powerState stopped stops the domain; running starts it again; a spec change redefines it")
    func powerState() async throws {
        let harness = try ComputeHarness()
        try harness.store.apply(cloud(instances: [("web-1", "m1.small")]), options: ApplyOptions())
        #expect(try await eventually { try harness.instance("web-1")?.displayPhase == "Running" })
        let name = "stratus-\(try harness.instance("web-1")!.metadata.id!)"
        try harness.store.apply(cloud(instances: [("web-1", "m1.small")], power: "stopped"), options: ApplyOptions())
        #expect(try await eventually { try harness.instance("web-1")?.displayPhase == "Stopped" })
        #expect(try await harness.hypervisor.domain(named: name)?.state == .shutoff)
        try harness.store.apply(cloud(instances: [("web-1", "m1.medium")]), options: ApplyOptions())
        #expect(try await eventually { try harness.instance("web-1")?.displayPhase == "Running" && harness.instance("web-1")?.resource.status?.observedGeneration == 3 })
        #expect(try await harness.hypervisor.domain(named: name)?.owner?.generation == 3)
        await harness.stop()
    }

    @Test("resizing a running instance updates its definition and says a restart is needed, without redefining in a loop")
    func resizeWhileRunning() async throws {
        let harness = try ComputeHarness()
        try harness.store.apply(cloud(instances: [("web-1", "m1.small")]), options: ApplyOptions())
        #expect(try await eventually { try harness.instance("web-1")?.displayPhase == "Running" })
        let name = "stratus-\(try harness.instance("web-1")!.metadata.id!)"
        try harness.store.apply(cloud(instances: [("web-1", "m1.medium")]), options: ApplyOptions())
        #expect(try await eventually { try harness.instance("web-1")?.resource.status?.condition(.configApplied)?.reason == .restartRequired })
        let domain = try #require(try await harness.hypervisor.domain(named: name))
        #expect(domain.state == .running)
        #expect(domain.owner?.generation == 1)
        #expect(domain.definedOwner?.generation == 2)
        try await harness.controller.resync()
        try await Task.sleep(for: .milliseconds(300))
        #expect(try harness.instance("web-1")?.resource.status?.condition(.configApplied)?.reason == .restartRequired)
        try harness.store.apply(cloud(instances: [("web-1", "m1.medium")], power: "stopped"), options: ApplyOptions())
        #expect(try await eventually { try harness.instance("web-1")?.displayPhase == "Stopped" })
        try harness.store.apply(cloud(instances: [("web-1", "m1.medium")]), options: ApplyOptions())
        #expect(try await eventually {
            let status = try harness.instance("web-1")?.resource.status
            return status?.phase == "Running" && status?.observedGeneration == 4 && status?.condition(.configApplied)?.status == .true
        })
        #expect(try await harness.hypervisor.domain(named: name)?.owner?.generation == 4)
        await harness.stop()
    }

    @Test("drift lists missing, wrongly powered and orphaned domains without changing anything")
    func driftReport() async throws {
        let harness = try ComputeHarness()
        try harness.store.apply(cloud(instances: [("web-1", "m1.tiny"), ("web-2", "m1.tiny")]), options: ApplyOptions())
        #expect(try await eventually { try harness.store.phaseCounts(kind: .instance)["Running"] == 2 })
        await harness.stop()
        let compute = ComputeReconciler(store: harness.store, transport: InProcessTransport.local(node: "node-1", hypervisor: harness.hypervisor, dataDirectory: harness.data), scheduler: Scheduler(store: harness.store))
        #expect(try await compute.drift().isEmpty)
        let web1 = "stratus-\(try harness.instance("web-1")!.metadata.id!)"
        let web2 = "stratus-\(try harness.instance("web-2")!.metadata.id!)"
        try await harness.hypervisor.destroy(web1)
        try await harness.hypervisor.undefine(web1)
        try await harness.hypervisor.destroy(web2)
        let orphan = DomainOwner(project: "acme", name: "gone", id: "i-0000beef", generation: 1)
        try await harness.hypervisor.define(xml: DomainXML.render(DomainDefinition(name: "stratus-i-0000beef", type: "test", memoryMB: 64, vcpus: 1, owner: orphan)))
        let findings = try await compute.drift().map { "\($0.object): \($0.problem)" }
        #expect(findings.sorted() == [
            "Instance acme/web-1: domain is missing",
            "Instance acme/web-2: domain is shut-off, spec says powerState: running",
            "stratus-i-0000beef: no instance wants this Stratus domain (owner Instance acme/gone is gone)",
        ])
        #expect(try await harness.hypervisor.domain(named: web1) == nil)  // nothing was repaired
    }

    @Test("a periodic resync picks only the instances a bulk comparison with libvirt finds unconverged")
    func bulkResync() async throws {
        let harness = try ComputeHarness()
        try harness.store.apply(cloud(instances: [("web-1", "m1.tiny"), ("web-2", "m1.tiny"), ("web-3", "m1.tiny")]), options: ApplyOptions())
        #expect(try await eventually { try harness.store.phaseCounts(kind: .instance)["Running"] == 3 })
        await harness.stop()
        let compute = ComputeReconciler(store: harness.store, transport: InProcessTransport.local(node: "node-1", hypervisor: harness.hypervisor, dataDirectory: harness.data), scheduler: Scheduler(store: harness.store))
        #expect(await compute.bulkResync() == [], "converged instances are left alone")
        try await harness.hypervisor.destroy("stratus-\(try harness.instance("web-2")!.metadata.id!)")
        // web-3 gets a new generation the controller has not seen yet.
        try harness.store.apply(cloud(instances: [("web-1", "m1.tiny"), ("web-2", "m1.tiny"), ("web-3", "m1.small")]), options: ApplyOptions())
        let keys = await compute.bulkResync()?.map(\.name).sorted()
        #expect(keys == ["web-2", "web-3"])
        _ = try harness.store.delete([ResourceKey(kind: .instance, project: "acme", name: "web-1")])
        #expect(await compute.bulkResync()?.map(\.name).sorted() == ["web-1", "web-2", "web-3"], "a deletion to finish")
    }

    @Test("an instance of a project with a network gets a NIC on its bridge with a MAC claimed in the store")
    func networkInterface() async throws {
        let harness = try ComputeHarness()
        let network = try ManifestLoader.load([ManifestSource(name: "n.yaml", data: Data("apiVersion: stratus/v1\nkind: Network\nmetadata: {name: private, project: acme}\nspec: {cidr: 10.10.0.0/24, vlan: 100}\n".utf8))])
        try harness.store.apply(cloud(instances: [("web-1", "m1.tiny")]) + network, options: ApplyOptions())
        #expect(try await eventually { try harness.instance("web-1")?.displayPhase == "Running" })
        let instance = try #require(try harness.instance("web-1"))
        let mac = try #require(instance.resource.status?.details["mac"]?.stringValue)
        #expect(mac.hasPrefix("52:54:00:"))
        #expect(instance.resource.status?.details["network"]?.stringValue == "bridge br100")
        let xml = try #require(try await harness.hypervisor.xml(of: "stratus-\(instance.metadata.id!)"))
        #expect(xml.contains("<source bridge='br100'/>") || xml.contains("<source bridge=\"br100\"/>"), "\(xml)")
        #expect(xml.lowercased().contains(mac))
        #expect(try harness.store.allocate(pool: "mac", candidates: [mac], owner: ResourceKey(kind: .instance, project: "acme", name: "other")) == nil)
        await harness.stop()
    }

    @Test("with host networking managed, a project's first instance gets the project a default network, and waits until it is Ready")
    func defaultNetworkForTheFirstInstance() async throws {
        let harness = try ComputeHarness(networksManaged: true)
        try harness.store.apply(cloud(instances: [("web-1", "m1.tiny")]), options: ApplyOptions())
        let key = ResourceKey(kind: .network, project: "acme", name: "default")
        #expect(try await eventually { try harness.store.get(key) != nil }, "the network is made")
        let network = try #require(try harness.store.get(key))
        #expect(network.metadata.manager == "stratus" && network.metadata.applySet == "networks", "\(network.metadata)")
        // The network reconciler here manages no host: the network says so and stays Pending,
        // so the instance waits for it rather than booting without its NIC.
        #expect(try await eventually { try harness.instance("web-1")?.resource.status?.condition(.ready)?.reason == .waitingForNetwork })
        #expect(try await eventually { try harness.store.get(key)?.resource.status?.details["cidr"]?.stringValue == "10.0.100.0/24" }, "its subnet: the /24 of VLAN 100")
        await harness.stop()
    }

    @Test("instances get fixed IPs from their network's subnet from .3 (the gateway .1 and .2 reserved); a deleted instance's address is reused")
    func fixedAddresses() async throws {
        let harness = try ComputeHarness()
        let network = try ManifestLoader.load([ManifestSource(name: "n.yaml", data: Data("apiVersion: stratus/v1\nkind: Network\nmetadata: {name: private, project: acme}\nspec: {cidr: 10.20.0.0/29, vlan: 101}\n".utf8))])
        let names = ["web-1", "web-2", "web-3", "web-4"]
        try harness.store.apply(cloud(instances: names.map { ($0, "m1.tiny") }) + network, options: ApplyOptions())
        #expect(try await eventually { try harness.store.phaseCounts(kind: .instance)["Running"] == 4 })
        // A /29 has six host addresses: .1 is the gateway, .2 is reserved (as in Nova), .3 to .6 go to instances.
        let ips = try names.map { try harness.instance($0)?.resource.status?.details["ip"]?.stringValue ?? "-" }
        #expect(Set(ips) == ["10.20.0.3", "10.20.0.4", "10.20.0.5", "10.20.0.6"])
        #expect(try harness.store.allocationOwner(pool: Store.fixedIPPool, value: ips[0]) == ResourceKey(kind: .instance, project: "acme", name: "web-1"))
        // The subnet is full: a fifth instance still runs, without a NIC, and says why.
        try harness.store.apply(cloud(instances: (names + ["web-6"]).map { ($0, "m1.tiny") }) + network, options: ApplyOptions())
        #expect(try await eventually { try harness.instance("web-6")?.displayPhase == "Running" })
        #expect(try harness.instance("web-6")?.resource.status?.details["network"]?.stringValue?.contains("no free address") == true)
        // Deleting web-2 frees its address; web-6, whose status says its NIC was left out, gets it at the next resync.
        _ = try harness.store.delete([ResourceKey(kind: .instance, project: "acme", name: "web-2")])
        #expect(try await eventually { try harness.store.allocationOwner(pool: Store.fixedIPPool, value: ips[1]) == nil })
        await harness.stop()
    }

    @Test("deleting an instance destroys and undefines its domain before the record goes")
    func delete() async throws {
        let harness = try ComputeHarness()
        try harness.store.apply(cloud(instances: [("web-1", "m1.small")]), options: ApplyOptions())
        #expect(try await eventually { try harness.instance("web-1")?.displayPhase == "Running" })
        let name = "stratus-\(try harness.instance("web-1")!.metadata.id!)"
        _ = try harness.store.delete([ResourceKey(kind: .instance, project: "acme", name: "web-1")])
        #expect(try await eventually { try harness.instance("web-1") == nil })
        #expect(try await harness.hypervisor.domain(named: name) == nil)
        await harness.stop()
    }

    @Test("an instance outlives its deleted image: it keeps converging from the files it was built from")
    func outlivesImage() async throws {
        let harness = try ComputeHarness()
        try harness.store.apply(cloud(instances: [("web-1", "m1.small")]), options: ApplyOptions())
        #expect(try await eventually { try harness.instance("web-1")?.displayPhase == "Running" })
        #expect(InstanceDetails(try harness.instance("web-1")?.resource.status).image?["source"] == "/images/debian.qcow2")
        let image = ResourceKey(kind: .image, project: "acme", name: "debian")
        _ = try harness.store.delete([image])
        #expect(try await eventually { try harness.store.get(image) == nil })
        // Stopping it needs a new converge, which has no image to read any more.
        try harness.store.apply(cloud(instances: [("web-1", "m1.small")], power: "stopped").filter { $0.key.kind != .image }, options: ApplyOptions())
        #expect(try await eventually { try harness.instance("web-1")?.displayPhase == "Stopped" })
        #expect(try harness.instance("web-1")?.resource.status?.condition(.synced)?.reason != .imageNotFound)
        await harness.stop()
    }

    @Test("an instance that fits nowhere is Unschedulable, with the numbers")
    func unschedulable() async throws {
        let harness = try ComputeHarness(memoryMB: 2048)
        try harness.store.apply(cloud(instances: [("big", "m1.xlarge")]), options: ApplyOptions())
        let expected = "no node has 8192 MB and 4 vCPUs free (node-1: 3072 MB and 64 vCPUs free)"
        #expect(try await eventually { try harness.instance("big")?.resource.status?.condition(.synced)?.message == expected })
        #expect(try harness.instance("big")?.resource.status?.condition(.synced)?.reason == .unschedulable)
        #expect(try harness.instance("big")?.resource.status?.condition(.ready)?.status == .false)
        #expect(try harness.instance("big")?.displayPhase == "Pending")
        await harness.stop()
    }

    @Test("a missing instance type fails the reconcile with a reason, not a crash")
    func missingType() async throws {
        let store = try Store(writer: DatabaseQueue())
        let hypervisor = try LibvirtHypervisor(uri: try privateNodeURI())
        try NodeReconciler.register("node-1", zone: "nova", in: store)
        try store.apply(cloud(instances: [("web-1", "m1.tiny")]), options: ApplyOptions())
        let type = ResourceKey(kind: .instanceType, project: nil, name: "m1.tiny")
        _ = try store.delete([type])
        try store.finalizeDeletion(type)
        let compute = ComputeReconciler(store: store, transport: InProcessTransport.local(node: "node-1", hypervisor: hypervisor, dataDirectory: NSTemporaryDirectory()), scheduler: Scheduler(store: store))
        let result = await compute.reconcile(try #require(try store.get(ResourceKey(kind: .instance, project: "acme", name: "web-1"))))
        #expect(result == .failed(reason: .instanceTypeNotFound, message: "InstanceType m1.tiny does not exist; create it or change spec.instanceType", retryable: true))
    }
}

/// Tests on `test:///default`, whose state every connection in the process shares, so a second
/// connection can act "out of band". Serialized: the orphan sweep of one would see the other's domains.
@Suite(.serialized) struct DriftTests {
    @Test("a domain destroyed and undefined by another connection is repaired from libvirt's events, before any resync")
    func repairFromEvents() async throws {
        let uri = "test:///default"
        let harness = try ComputeHarness(uri: uri, resync: .seconds(600))
        try harness.store.apply(cloud(instances: [("web-1", "m1.tiny")], project: "drift"), options: ApplyOptions())
        #expect(try await eventually { try harness.instance("web-1", project: "drift")?.displayPhase == "Running" })
        let name = "stratus-\(try harness.instance("web-1", project: "drift")!.metadata.id!)"
        let other = try LibvirtHypervisor(uri: uri)
        try await other.destroy(name)
        try await other.undefine(name)  // throws unless the domain was there to remove
        // No look in between: the controller may have defined it again before the next call returns.
        #expect(try await eventually(timeout: .seconds(30)) { try await other.domain(named: name)?.state == .running })
        _ = try harness.store.delete([ResourceKey(kind: .instance, project: "drift", name: "web-1")])
        #expect(try await eventually { try await other.domain(named: name) == nil })
        await harness.stop()
    }

    @Test("a Stratus domain no instance wants is removed at resync; domains Stratus did not define are left alone")
    func orphans() async throws {
        let uri = "test:///default"
        let other = try LibvirtHypervisor(uri: uri)
        // A running orphan from before the controller started goes at the start's full resync.
        let running = DomainOwner(project: "drift", name: "gone", id: "i-0000dead", generation: 1)
        try await other.define(xml: DomainXML.render(DomainDefinition(name: "stratus-i-0000dead", type: "test", memoryMB: 64, vcpus: 1, owner: running)))
        try await other.start("stratus-i-0000dead")
        let foreign = "not-ours-\(UUID().uuidString.prefix(8))"
        try await other.define(xml: "<domain type='test'><name>\(foreign)</name><memory unit='MiB'>64</memory><os><type>hvm</type></os></domain>")
        let harness = try ComputeHarness(uri: uri, resync: .milliseconds(300))
        #expect(try await eventually { try await other.domain(named: "stratus-i-0000dead") == nil })
        // One defined while it runs goes at a periodic (bulk) resync.
        let later = DomainOwner(project: "drift", name: "gone-too", id: "i-0000feed", generation: 1)
        try await other.define(xml: DomainXML.render(DomainDefinition(name: "stratus-i-0000feed", type: "test", memoryMB: 64, vcpus: 1, owner: later)))
        #expect(try await eventually { try await other.domain(named: "stratus-i-0000feed") == nil })
        #expect(try await other.domain(named: foreign) != nil)
        try await other.undefine(foreign)
        await harness.stop()
    }
}
