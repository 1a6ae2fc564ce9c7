import Foundation
import StratusCompute
import StratusControl
import StratusModel
import StratusNetwork
import StratusNode
import StratusStore

/// `stratus-bench network [networks] [addresses]` (root; issue 14): in network namespaces it makes
/// and deletes,
/// 1. a hand-written `ip -batch` of N bridges with VXLAN segments and gateways (the peer);
/// 2. the same N links through `LinuxHostNetwork.converge`, the call the reconciler's batches make;
/// 3. N project Networks applied to a store with the controller and the real network reconciler
///    (links, dnsmasq per bridge, the packet filter) until all are Ready, then a no-change pass;
/// 4. M elastic addresses associated with M running instances (libvirt test driver): from the
///    apply until all M DNAT entries are in the kernel's table.
enum NetworkBench {
    static func run(networks count: Int, addresses: Int) async throws {
        guard getuid() == 0 else { throw HostNetworkError("the network benchmark needs root (network namespaces)") }
        let tag = UUID().uuidString.prefix(6).lowercased()
        let quiet = try waitForQuietKernel(tag: tag)
        let names = ["stb-peer-\(tag)", "stb-links-\(tag)", "stb-ctl-\(tag)", "stb-eip-\(tag)"]
        for name in names {
            _ = try ChildProcess.run("/usr/sbin/ip", ["netns", "add", name])
            _ = try ChildProcess.run("/usr/sbin/ip", ["-n", name, "link", "set", "lo", "up"])
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-bench-net-\(tag)").path
        defer {
            // dnsmasq processes first (they hold the namespaces' bridges), then the namespaces.
            for pidFile in (try? FileManager.default.subpathsOfDirectory(atPath: directory).filter { $0.hasSuffix(".pid") }) ?? [] {
                if let text = try? String(contentsOfFile: "\(directory)/\(pidFile)", encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) { kill(pid, SIGKILL) }
            }
            for name in names { _ = try? ChildProcess.run("/usr/sbin/ip", ["netns", "del", name]) }
            try? FileManager.default.removeItem(atPath: directory)
        }
        let intents = (0..<count).map { index in
            NetworkIntent(name: "p\(index)/net", bridge: "br\(100 + index)", segment: .vxlan(id: 100 + index, device: "lo"), gateway: "10.\(index / 250).\(index % 250).1/24")
        }

        // 1. The peer: one hand-written batch.
        var lines: [String] = []
        for intent in intents {
            let vx = intent.segment.interface
            lines += ["link add name \(intent.bridge) type bridge", "link add \(vx) type vxlan id \(intent.segment.interface.dropFirst(2)) dstport 4789 local 127.0.0.1 dev lo",
                      "link set \(vx) master \(intent.bridge)", "address add \(intent.gateway) dev \(intent.bridge)", "link set \(vx) up", "link set \(intent.bridge) up"]
        }
        let batchFile = "\(FileManager.default.temporaryDirectory.path)/stratus-bench-\(tag).batch"
        try (lines.joined(separator: "\n") + "\n").write(toFile: batchFile, atomically: true, encoding: .utf8)
        defer { unlink(batchFile) }
        var start = ContinuousClock.now
        let peer = try ChildProcess.run("/usr/sbin/ip", ["-n", names[0], "-batch", batchFile])
        let peerSeconds = (ContinuousClock.now - start).seconds
        guard peer.status == 0 else { throw HostNetworkError("the hand-written batch failed: \(peer.errors)") }

        // 2. The same links through the driver: a look at the kernel, one batch, then a no-change look.
        let links = try LinuxHostNetwork(namespace: names[1])
        start = ContinuousClock.now
        let made = try await links.converge(intents)
        let linkSeconds = (ContinuousClock.now - start).seconds
        start = ContinuousClock.now
        let again = try await links.converge(intents)
        let linkNoChange = (ContinuousClock.now - start).seconds
        guard made.count >= count * 2, again.isEmpty else { throw HostNetworkError("the driver made \(made.count) changes, then \(again.count)") }

        // 3. Networks through the controller, with DHCP and the packet filter.
        let (networkSeconds, resyncSeconds) = try await controllerNetworks(count, namespace: names[2], directory: "\(directory)/ctl")

        // 4. Elastic addresses.
        let (instancesSeconds, natSeconds) = try await elasticAddresses(addresses, namespace: names[3], directory: "\(directory)/eip")

        let linkRatio = linkSeconds / peerSeconds
        let report = """
            | measurement | result | target |
            |---|---|---|
            | hand-written `ip -batch`: \(count) bridges + VXLAN segments + gateways | \(String(format: "%.3f", peerSeconds)) s | (the peer) |
            | Stratus `LinuxHostNetwork.converge`: the same \(count), from nothing (look, one batch) | \(String(format: "%.3f", linkSeconds)) s (\(String(format: "%.1f", linkRatio))× the peer) | ≤ 2× the peer: \(linkRatio <= 2 ? "PASS" : "FAIL") |
            | the same, nothing to change | \(String(format: "%.3f", linkNoChange)) s | |
            | apply \(count) Networks → all Ready (controller: links in batches, a dnsmasq per bridge, the packet filter) | \(String(format: "%.3f", networkSeconds)) s | < 10 s: \(networkSeconds < 10 ? "PASS" : "FAIL") |
            | the \(count) Networks reconciled again, nothing to change | \(String(format: "%.3f", resyncSeconds)) s | |
            | (setup) \(addresses) Instances Running on one network (libvirt test driver) | \(String(format: "%.3f", instancesSeconds)) s | |
            | apply \(addresses) Addresses associated with them → all \(addresses) DNAT entries in the kernel | \(String(format: "%.3f", natSeconds)) s | |

            """
        FileHandle.standardOutput.write(Data(report.utf8))
        FileHandle.standardOutput.write(Data("(waited \(String(format: "%.1f", quiet)) s at the start for the kernel to finish tearing down earlier namespaces)\n".utf8))
    }

    /// Waits until the kernel makes and removes a bridge at once: namespaces deleted just
    /// before (a previous run's 1,000 links) are torn down in the background and hold the
    /// locks link changes need — a batch measured then took 9.6 s instead of 0.12 s.
    static func waitForQuietKernel(tag: String) throws -> Double {
        let probe = "stb-quiet-\(tag)"
        _ = try ChildProcess.run("/usr/sbin/ip", ["netns", "add", probe])
        defer { _ = try? ChildProcess.run("/usr/sbin/ip", ["netns", "del", probe]) }
        let start = ContinuousClock.now
        var quick = 0
        var made = 0
        while quick < 3, ContinuousClock.now - start < .seconds(120) {
            let before = ContinuousClock.now
            _ = try ChildProcess.run("/usr/sbin/ip", ["-n", probe, "link", "add", "qb\(made)", "type", "bridge"])
            made += 1
            quick = ContinuousClock.now - before < .milliseconds(100) ? quick + 1 : 0
            if quick < 3 { usleep(100_000) }
        }
        return (ContinuousClock.now - start).seconds
    }

    static func reconcilers(store: Store, namespace: String, directory: String, node: String) throws -> (NetworkReconciler, AddressReconciler) {
        let firewall = HostFirewall(store: store, firewall: try LinuxFirewall(namespace: namespace), node: node, privateRange: "10.0.0.0/8", metadata: MetadataTarget(ip: "127.0.0.1", port: 8775))
        let network = NetworkReconciler(store: store, host: .init(
            network: try LinuxHostNetwork(namespace: namespace), dhcp: try DHCPServer(directory: "\(directory)/dhcp", namespace: namespace),
            segmentation: "vxlan", physicalInterface: "lo", firewall: firewall))
        guard case .success(let range) = IPv4Network.parse("198.18.0.0/16") else { throw HostNetworkError("bad range") }
        return (network, AddressReconciler(store: store, publicRange: range, firewall: firewall))
    }

    static func controllerNetworks(_ count: Int, namespace: String, directory: String) async throws -> (Double, Double) {
        let store = try Store(dataDirectory: directory)
        let (network, address) = try reconcilers(store: store, namespace: namespace, directory: directory, node: "bench-node")
        let controller = Controller(store: store, reconcilers: [network, address], resyncInterval: .seconds(600))
        let task = Task { try await controller.run() }
        defer { task.cancel() }
        var text = "apiVersion: stratus/v1\nkind: User\nmetadata: {name: bench}\nspec: {}\n"
        for index in 0..<count {
            text += "---\napiVersion: stratus/v1\nkind: Project\nmetadata: {name: p\(index)}\nspec: {manager: bench}\n"
            text += "---\napiVersion: stratus/v1\nkind: Network\nmetadata: {name: net, project: p\(index)}\nspec: {cidr: 10.\(index / 250).\(index % 250).0/24}\n"
        }
        let documents = try ManifestLoader.load([ManifestSource(name: "networks.yaml", data: Data(text.utf8))])
        let start = ContinuousClock.now
        try store.apply(documents, options: ApplyOptions())
        while try store.phaseCounts(kind: .network)["Ready", default: 0] < count {
            if ContinuousClock.now - start > .seconds(300) { throw HostNetworkError("networks not Ready after 300 s: \(try store.phaseCounts(kind: .network))") }
            try await Task.sleep(for: .milliseconds(20))
        }
        let applied = (ContinuousClock.now - start).seconds
        task.cancel()
        // Nothing to change: every network reconciled again, 16 at a time as the controller does.
        let resources = try store.list(kind: .network)
        let again = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = resources.makeIterator()
            for _ in 0..<network.concurrency {
                guard let resource = next.next() else { break }
                group.addTask { _ = await network.reconcile(resource) }
            }
            while try await group.next() != nil {
                if let resource = next.next() { group.addTask { _ = await network.reconcile(resource) } }
            }
        }
        return (applied, (ContinuousClock.now - again).seconds)
    }

    static func elasticAddresses(_ count: Int, namespace: String, directory: String) async throws -> (Double, Double) {
        guard count > 0 else { return (0, 0) }
        let store = try Store(dataDirectory: directory)
        let hypervisor = try LibvirtHypervisor(uri: try StratusBench.privateNode())
        try NodeReconciler.register("bench-node", zone: "nova", in: store)
        let transport = InProcessTransport.local(node: "bench-node", hypervisor: hypervisor, dataDirectory: directory)
        let compute = ComputeReconciler(store: store, transport: transport, scheduler: Scheduler(store: store))
        let (network, address) = try reconcilers(store: store, namespace: namespace, directory: directory, node: "bench-node")
        let controller = Controller(store: store, reconcilers: [CatalogReconciler(), NodeReconciler(transport: transport), compute, network, address], resyncInterval: .seconds(600))
        let task = Task { try await controller.run() }
        defer { task.cancel() }
        var text = "apiVersion: stratus/v1\nkind: User\nmetadata: {name: bench}\nspec: {}\n---\napiVersion: stratus/v1\nkind: Project\nmetadata: {name: bench}\nspec: {manager: bench, quotas: {instances: 100000, cores: 100000, ram: 1000000000, addresses: 100000}}\n"
        text += "---\napiVersion: stratus/v1\nkind: Network\nmetadata: {name: net, project: bench}\nspec: {cidr: 10.200.0.0/20}\n"
        text += "---\napiVersion: stratus/v1\nkind: Image\nmetadata: {name: img, project: bench}\nspec: {source: /images/x.qcow2}\n"
        for index in 0..<count { text += "---\napiVersion: stratus/v1\nkind: Instance\nmetadata: {name: vm-\(index), project: bench}\nspec: {image: img, instanceType: m1.tiny}\n" }
        var start = ContinuousClock.now
        try store.apply(try ManifestLoader.load([ManifestSource(name: "instances.yaml", data: Data(text.utf8))]), options: ApplyOptions())
        while try store.list(kind: .instance).filter({ InstanceDetails($0.resource.status).ip != nil && $0.resource.status?.phase == "Running" }).count < count {
            if ContinuousClock.now - start > .seconds(600) { throw HostNetworkError("instances not Running with addresses after 600 s") }
            try await Task.sleep(for: .milliseconds(200))
        }
        let instancesSeconds = (ContinuousClock.now - start).seconds
        var addresses = ""
        for index in 0..<count { addresses += "---\napiVersion: stratus/v1\nkind: Address\nmetadata: {name: eip-\(index), project: bench}\nspec: {instance: vm-\(index)}\n" }
        let firewall = try LinuxFirewall(namespace: namespace)
        start = ContinuousClock.now
        try store.apply(try ManifestLoader.load([ManifestSource(name: "addresses.yaml", data: Data(addresses.utf8))]), options: ApplyOptions(applySet: "addresses"))
        while true {
            let listed = try await firewall.observe()
            let prerouting = listed.split(separator: "\n").first { $0.contains("dnat to ip daddr map") } ?? ""
            if prerouting.components(separatedBy: " : ").count - 1 >= count { break }
            if ContinuousClock.now - start > .seconds(600) { throw HostNetworkError("DNAT entries not in the kernel after 600 s") }
            try await Task.sleep(for: .milliseconds(50))
        }
        return (instancesSeconds, (ContinuousClock.now - start).seconds)
    }
}
