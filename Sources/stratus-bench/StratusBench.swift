import CLibvirt
import Foundation
import GRDB
import StratusCompute
import StratusControl
import StratusModel
import StratusNode
import StratusStore

/// `stratus-bench identity [N]`: see `IdentityBench`.
/// `stratus-bench ec2-load …`: see `EC2LoadBench` (driven by bench/ec2_load.py).
/// `stratus-bench s3-load …`: see `S3LoadBench` (driven by bench/s3_compare.py).
/// `stratus-bench network [N] [M]`: see `NetworkBench` (root).
/// `stratus-bench volumes [N]`: see `VolumeBench` (root).
/// `stratus-bench agents --bin STRATUS [nodes] [instances]`: see `AgentsBench` (RabbitMQ).
/// `stratus-bench aoe-read [MiB] [MTU]`: see `AoEReadBench` (root).
/// `stratus-bench compute [N]`: Instances → running libvirt test-driver domains, against the raw
/// libvirt rate measured in the same process; then the time to repair an out-of-band destroy.
@main
struct StratusBench {
    static func main() async throws {
        let arguments = CommandLine.arguments.dropFirst()
        if arguments.first == "identity" {
            try await IdentityBench.run(users: arguments.dropFirst().first.flatMap(Int.init) ?? 10_000)
            return
        }
        if arguments.first == "ec2-load" {
            do {
                try EC2LoadBench.run(Array(arguments.dropFirst()))
            } catch {
                FileHandle.standardError.write(Data("stratus-bench ec2-load: \(error)\n".utf8))
                exit(2)
            }
            return
        }
        if arguments.first == "s3-load" {
            do {
                try S3LoadBench.run(Array(arguments.dropFirst()))
            } catch {
                FileHandle.standardError.write(Data("stratus-bench s3-load: \(error)\n".utf8))
                exit(2)
            }
            return
        }
        if arguments.first == "network" {
            let rest = Array(arguments.dropFirst())
            do {
                try await NetworkBench.run(networks: rest.first.flatMap(Int.init) ?? 200, addresses: rest.dropFirst().first.flatMap(Int.init) ?? 1000)
            } catch {
                FileHandle.standardError.write(Data("stratus-bench network: \(error)\n".utf8))
                exit(2)
            }
            return
        }
        if arguments.first == "aoe-read" {
            let rest = Array(arguments.dropFirst())
            do {
                try await AoEReadBench.run(mebibytes: rest.first.flatMap(Int.init) ?? 256, mtu: rest.dropFirst().first.flatMap(Int.init) ?? 9000)
            } catch {
                FileHandle.standardError.write(Data("stratus-bench aoe-read: \(error)\n".utf8))
                exit(2)
            }
            return
        }
        if arguments.first == "agents" {
            do {
                try await AgentsBench.run(Array(arguments.dropFirst()))
            } catch {
                FileHandle.standardError.write(Data("stratus-bench agents: \(error)\n".utf8))
                exit(2)
            }
            return
        }
        if arguments.first == "volumes" {
            do {
                try await VolumeBench.run(volumes: arguments.dropFirst().first.flatMap(Int.init) ?? 100)
            } catch {
                FileHandle.standardError.write(Data("stratus-bench volumes: \(error)\n".utf8))
                exit(2)
            }
            return
        }
        guard arguments.first == "compute" else {
            FileHandle.standardError.write(Data("usage: stratus-bench compute [instances] | identity [users] | ec2-load EC2_URL ACCESS SECRET IMAGE [--clients N] [--seconds S] | s3-load S3_URL ACCESS SECRET [--clients N] [--objects N] | network [networks] [addresses] | volumes [count] | aoe-read [MiB] [MTU] | agents --bin STRATUS [nodes] [instances]\n".utf8))
            exit(2)
        }
        let count = arguments.dropFirst().first.flatMap(Int.init) ?? 1000
        let raw = try rawRate(count)
        let (stratusSeconds, _) = try await stratusRate(count)
        let repairs = try await repairTimes(runs: 5)
        let stratusRate = Double(count) / stratusSeconds
        let rawPerSecond = Double(count) / raw
        let median = repairs.sorted()[repairs.count / 2]
        let report = """
            | measurement | result |
            |---|---|
            | raw libvirt test driver: define+start \(count) domains in a loop | \(String(format: "%.3f", raw)) s (\(Int(rawPerSecond)) domains/s) |
            | Stratus: apply \(count) Instances → all Running (controller, scheduler, compute reconciler) | \(String(format: "%.3f", stratusSeconds)) s (\(Int(stratusRate)) instances/s) |
            | ratio Stratus / raw | \(String(format: "%.0f", 100 * stratusRate / rawPerSecond))% |
            | out-of-band destroy+undefine → Running again (median of \(repairs.count); \(repairs.map { String(format: "%.3f", $0) }.joined(separator: ", ")) s) | \(String(format: "%.3f", median)) s |

            """
        FileHandle.standardOutput.write(Data(report.utf8))
    }

    static func privateNode() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-bench-node-\(UUID().uuidString).xml").path
        try "<node><cpu><mhz>2000</mhz><model>bench</model><nodes>1</nodes><sockets>1</sockets><cores>64</cores><threads>1</threads></cpu><memory>\(1024 * 1024 * 1024)</memory></node>"
            .write(toFile: path, atomically: true, encoding: .utf8)
        return "test://\(path)"
    }

    /// Define+start in a tight loop on the C API: the ceiling.
    static func rawRate(_ count: Int) throws -> Double {
        guard let connection = virConnectOpen(try privateNode()) else { throw HypervisorError(operation: "open", message: "raw connection failed") }
        defer { virConnectClose(connection) }
        let start = ContinuousClock.now
        for index in 0..<count {
            let owner = DomainOwner(project: "raw", name: "vm-\(index)", id: "i-\(String(format: "%08x", index))", generation: 1)
            let xml = DomainXML.render(DomainDefinition(name: "raw-\(index)", type: "test", memoryMB: 512, vcpus: 1, owner: owner))
            guard let domain = virDomainDefineXML(connection, xml) else { throw HypervisorError(operation: "define", message: "raw define failed") }
            guard virDomainCreate(domain) == 0 else { throw HypervisorError(operation: "start", message: "raw start failed") }
            virDomainFree(domain)
        }
        return (ContinuousClock.now - start).seconds
    }

    static func manifest(_ count: Int, project: String) throws -> [ManifestDocument] {
        var text = "apiVersion: stratus/v1\nkind: User\nmetadata: {name: bench}\nspec: {}\n---\napiVersion: stratus/v1\nkind: Project\nmetadata: {name: \(project)}\nspec: {manager: bench, quotas: {instances: 100000, cores: 100000, ram: 1000000000}}\n---\napiVersion: stratus/v1\nkind: Image\nmetadata: {name: img, project: \(project)}\nspec: {source: /images/x.qcow2}\n"
        for index in 0..<count {
            text += "---\napiVersion: stratus/v1\nkind: Instance\nmetadata: {name: vm-\(index), project: \(project)}\nspec: {image: img, instanceType: m1.tiny}\n"
        }
        return try ManifestLoader.load([ManifestSource(name: "bench.yaml", data: Data(text.utf8))])
    }

    /// A store on disk, a controller with the real reconcilers, and the time from apply to all Running.
    static func stratusRate(_ count: Int) async throws -> (Double, Store) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-bench-\(UUID().uuidString)").path
        let store = try Store(dataDirectory: directory)
        let hypervisor = try LibvirtHypervisor(uri: try privateNode())
        let (controller, task) = try await startController(store: store, hypervisor: hypervisor, directory: directory, resync: .seconds(600))
        _ = controller
        defer { task.cancel() }
        let documents = try manifest(count, project: "bench")
        let start = ContinuousClock.now
        try store.apply(documents, options: ApplyOptions())
        while try store.phaseCounts(kind: .instance)["Running", default: 0] < count {
            try await Task.sleep(for: .milliseconds(20))
        }
        return ((ContinuousClock.now - start).seconds, store)
    }

    static func startController(store: Store, hypervisor: LibvirtHypervisor, directory: String, resync: Duration) async throws -> (Controller, Task<Void, any Error>) {
        try NodeReconciler.register("bench-node", zone: "nova", in: store)
        let transport = InProcessTransport.local(node: "bench-node", hypervisor: hypervisor, dataDirectory: directory)
        let compute = ComputeReconciler(store: store, transport: transport, scheduler: Scheduler(store: store))
        let controller = Controller(store: store, reconcilers: [CatalogReconciler(), NodeReconciler(transport: transport), compute], resyncInterval: resync)
        let task = Task { try await controller.run() }
        while try store.get(ResourceKey(kind: .node, project: nil, name: "bench-node"))?.resource.status?.phase != "Ready" {
            try await Task.sleep(for: .milliseconds(10))
        }
        return (controller, task)
    }

    /// Destroy+undefine a running instance's domain through a second connection; time until it runs again.
    static func repairTimes(runs: Int) async throws -> [Double] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-bench-\(UUID().uuidString)").path
        let store = try Store(dataDirectory: directory)
        let uri = "test:///default"  // shared by every connection of the process: the second one acts out of band
        let hypervisor = try LibvirtHypervisor(uri: uri)
        let other = try LibvirtHypervisor(uri: uri)
        let (_, task) = try await startController(store: store, hypervisor: hypervisor, directory: directory, resync: .seconds(600))
        defer { task.cancel() }
        try store.apply(try manifest(5, project: "repair"), options: ApplyOptions())
        while try store.list(kind: .instance).filter({ $0.resource.status?.phase == "Running" }).count < 5 {
            try await Task.sleep(for: .milliseconds(10))
        }
        var times: [Double] = []
        for run in 0..<runs {
            let instance = try store.get(ResourceKey(kind: .instance, project: "repair", name: "vm-\(run % 5)"))!
            let name = ComputeReconciler.domainName(id: instance.metadata.id!)
            let start = ContinuousClock.now
            try await other.destroy(name)
            try await other.undefine(name)
            while try await other.domain(named: name)?.state != .running {
                try await Task.sleep(for: .milliseconds(5))
            }
            times.append((ContinuousClock.now - start).seconds)
        }
        return times
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
