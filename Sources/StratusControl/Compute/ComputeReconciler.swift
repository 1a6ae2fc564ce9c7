import Foundation
import Logging
import StratusCompute
import StratusModel
import StratusStore

/// Converges `Instance` resources into libvirt domains on the local node.
///
/// Each instance becomes the domain `stratus-<id>` whose metadata names its resource and
/// generation, so after a crash the reconciler recognises (adopts) its domains, redefines
/// those of an older generation, and `sweep` removes the ones no resource wants.
public struct ComputeReconciler: Reconciler {
    public let name = "compute"
    public let kinds: Set<Kind> = [.instance]
    public let concurrency: Int
    private let store: Store
    private let hypervisor: any Hypervisor
    private let scheduler: Scheduler
    private let localNode: String
    private let instanceDirectory: String
    private let logger: Logger
    private let lookups: LookupCache

    public init(
        store: Store, hypervisor: any Hypervisor, scheduler: Scheduler, localNode: String, dataDirectory: String,
        concurrency: Int = 8, logger: Logger = Logger(label: "stratus.compute")
    ) {
        self.store = store
        self.hypervisor = hypervisor
        self.scheduler = scheduler
        self.localNode = localNode
        self.instanceDirectory = (dataDirectory as NSString).appendingPathComponent("instances")
        self.concurrency = concurrency
        self.logger = logger
        self.lookups = LookupCache(store: store)
    }

    /// The libvirt domain name of an instance.
    public static func domainName(id: String) -> String { "stratus-\(id)" }

    public func reconcile(_ resource: StoredResource) async -> ReconcileResult {
        guard case .instance(let spec) = resource.resource.spec, let id = resource.metadata.id else {
            return .failed(reason: "NotAnInstance", message: "\(resource.key) has no instance id", retryable: false)
        }
        let now = Timestamp.string(Date())
        do {
            guard let typeResource = try lookups.get(ResourceKey(kind: .instanceType, project: nil, name: spec.instanceType)),
                case .instanceType(let type) = typeResource.resource.spec, !typeResource.isTerminating
            else {
                return .failed(reason: "InstanceTypeNotFound", message: "InstanceType \(spec.instanceType) does not exist; create it or change spec.instanceType", retryable: true)
            }
            let imageKey = imageReference(spec.image, project: resource.key.project)
            guard let imageResource = try lookups.get(imageKey), case .image(let image) = imageResource.resource.spec, !imageResource.isTerminating else {
                return .failed(reason: "ImageNotFound", message: "\(imageKey) does not exist; create it or change spec.image", retryable: true)
            }
            let node: String
            do {
                node = try await scheduler.place(resource, needs: type, zone: spec.availabilityZone)
            } catch let unschedulable as Scheduler.Unschedulable {
                return .failed(reason: "Unschedulable", message: unschedulable.description, retryable: true)
            }
            guard node == localNode else {
                // Another node's agent converges it (multi-node transport is a later issue).
                return .requeue(pendingStatus(resource, node: node, now: now), after: .seconds(30))
            }
            let domainName = Self.domainName(id: id)
            let directory = (instanceDirectory as NSString).appendingPathComponent(id)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let disk = try prepareDisk(image: image, directory: directory)
            let nic = try networkInterface(for: resource, spec: spec, id: id, node: node)
            var definition = DomainDefinition(
                name: domainName, type: hypervisor.domainType, memoryMB: type.memoryMB, vcpus: type.vcpus,
                disk: disk, diskFormat: "qcow2", kernel: image.kernel, initrd: image.ramdisk, cmdline: image.cmdline,
                consoleLog: (directory as NSString).appendingPathComponent("console.log"), bridge: nic.bridge, mac: nic.mac,
                owner: DomainOwner(project: resource.key.project, name: resource.key.name, id: id, generation: resource.generation)
            )
            let config = DomainXML.configDigest(of: definition)
            var existing = try await hypervisor.domain(named: domainName)
            let wanted = DomainOwner(project: resource.key.project, name: resource.key.name, id: id, generation: resource.generation, config: config)
            if existing == nil || existing?.definedOwner != wanted {
                definition.uuid = existing?.uuid
                try await hypervisor.define(xml: DomainXML.render(definition))
                logger.debug("domain defined", metadata: ["stratus.resource": "\(resource.key)", "stratus.domain": "\(domainName)", "stratus.generation": "\(resource.generation)"])
                if existing == nil { existing = DomainInfo(name: domainName, uuid: "", state: .shutoff, owner: wanted) }  // a new definition is shut off
            }
            var state = existing?.state ?? .shutoff
            var startedNow = false
            switch spec.powerState ?? .running {
            case .running where !state.isActive:
                try await hypervisor.start(domainName)
                state = .running  // virDomainCreate returns once the domain runs
                startedNow = true
            case .stopped where state.isActive:
                try await hypervisor.destroy(domainName)
                state = .shutoff
            default:
                break
            }
            var status = resource.resource.status ?? ResourceStatus()
            status.details["node"] = .string(node)
            status.details["domain"] = .string(domainName)
            status.details["domainState"] = .string(state.description)
            status.details["network"] = nic.note.map(JSONValue.string) ?? nic.bridge.map { .string("bridge \($0)") }
            status.details["mac"] = nic.mac.map(JSONValue.string)
            status.details["ip"] = nic.ip.map(JSONValue.string)
            let wantRunning = (spec.powerState ?? .running) == .running
            if state.isActive, !startedNow, let live = existing?.owner, live.config != config {
                status.setCondition(Condition(type: "ConfigApplied", status: "False", reason: "RestartRequired", message: "the running domain still has generation \(live.generation)'s memory, vCPUs or disks; set powerState: stopped, then running, to apply generation \(resource.generation)", lastTransitionTime: now))
            } else if status.condition("ConfigApplied") != nil {
                status.setCondition(Condition(type: "ConfigApplied", status: "True", reason: "Applied", lastTransitionTime: now))
            }
            if wantRunning && state.isActive {
                status.phase = "Running"
                status.setCondition(Condition(type: "Ready", status: "True", reason: "DomainRunning", message: "domain \(domainName) is \(state) on \(node)", lastTransitionTime: now))
            } else if !wantRunning && !state.isActive {
                status.phase = "Stopped"
                status.setCondition(Condition(type: "Ready", status: "True", reason: "DomainStopped", message: "domain \(domainName) is \(state) as requested", lastTransitionTime: now))
            } else {
                status.phase = "Pending"
                status.setCondition(Condition(type: "Ready", status: "False", reason: "DomainNotInState", message: "domain \(domainName) is \(state)", lastTransitionTime: now))
                return .requeue(status, after: .seconds(1))
            }
            return .done(status)
        } catch let error as HypervisorError {
            return .failed(reason: "HypervisorError", message: error.description, retryable: true)
        } catch let error as DiskError {
            return .failed(reason: "ImageUnavailable", message: error.description, retryable: true)
        } catch {
            return .failed(reason: "ReconcileError", message: "\(error)", retryable: true)
        }
    }

    public func finalize(_ resource: StoredResource) async -> ReconcileResult {
        guard let id = resource.metadata.id else { return .done(ResourceStatus()) }
        let domainName = Self.domainName(id: id)
        do {
            if let domain = try await hypervisor.domain(named: domainName) {
                if domain.state.isActive { try await hypervisor.destroy(domainName) }
                try await hypervisor.undefine(domainName)
            }
            try? FileManager.default.removeItem(atPath: (instanceDirectory as NSString).appendingPathComponent(id))
            await scheduler.release(resource.key)
            return .done(ResourceStatus())
        } catch {
            return .failed(reason: "TeardownFailed", message: "\(error)", retryable: true)
        }
    }

    /// Destroys and undefines Stratus-owned domains that no instance wants (after a crash, or a
    /// resource removed while the controller was down). Domains Stratus did not define are left alone.
    public func sweep(_ wanted: [StoredResource]) async -> [String] {
        let ids = Set(wanted.compactMap(\.metadata.id))
        guard let domains = try? await hypervisor.listDomains() else { return [] }
        var removed: [String] = []
        for domain in domains where await removeIfOrphan(domain, known: ids) { removed.append(domain.name) }
        return removed
    }

    /// Removes a Stratus-owned domain whose instance is neither in `known` nor in the store.
    private func removeIfOrphan(_ domain: DomainInfo, known ids: Set<String>) async -> Bool {
        guard let owner = domain.owner, !ids.contains(owner.id) else { return false }
        // The instance may have been created after `known` was read; only a missing one is an orphan.
        if (try? store.get(ec2Id: owner.id)) != nil { return false }
        do {
            if domain.state.isActive { try await hypervisor.destroy(domain.name) }
            try await hypervisor.undefine(domain.name)
            logger.warning("removed a domain no instance wants", metadata: ["stratus.domain": "\(domain.name)", "stratus.owner": "\(owner.key)"])
            return true
        } catch {
            logger.error("could not remove an orphaned domain", metadata: ["stratus.domain": "\(domain.name)", "stratus.error": "\(error)"])
            return false
        }
    }

    /// A periodic resync in bulk: one listing of domain states and one query instead of a
    /// reconcile per instance. Removes `stratus-<id>` domains whose id no instance has (their
    /// metadata is read only then), and returns every instance but those whose last reconcile of
    /// the current generation succeeded and settled (Running or Stopped, with its NIC if it has
    /// a network) and whose domain on this node is in the wanted power state. A domain
    /// redefined behind Stratus' back in the same state is caught by the full resync and `drift`.
    public func bulkResync() async -> [ResourceKey]? {
        guard let states = try? await hypervisor.domainStates(), let instances = try? store.instanceSummaries() else { return nil }
        let ids = Set(instances.compactMap(\.id))
        for name in states.keys where name.hasPrefix("stratus-") && !ids.contains(String(name.dropFirst("stratus-".count))) {
            if let domain = try? await hypervisor.domain(named: name) { _ = await removeIfOrphan(domain, known: ids) }
        }
        return instances.filter { instance in
            guard !instance.terminating, let id = instance.id, instance.observedGeneration == instance.generation,
                instance.synced == "True", instance.node == localNode, let state = states[Self.domainName(id: id)]
            else { return true }
            if let network = instance.network, !network.hasPrefix("bridge ") { return true }  // a NIC still left out
            let wantRunning = (instance.powerState ?? "running") == "running"
            return instance.phase != (wantRunning ? "Running" : "Stopped") || state.isActive != wantRunning
        }.map(\.key)
    }

    /// Compares the store's instances on this node with libvirt's domains, changing nothing.
    public func drift() async throws -> [DriftFinding] {
        let domains = Dictionary(try await hypervisor.listDomains().map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var findings: [DriftFinding] = []
        var ids = Set<String>()
        for instance in try store.list(kind: .instance) {
            guard let id = instance.metadata.id, case .instance(let spec) = instance.resource.spec else { continue }
            ids.insert(id)
            guard !instance.isTerminating, instance.resource.status?.details["node"]?.stringValue == localNode else { continue }
            let name = Self.domainName(id: id)
            let object = instance.key.description
            guard let domain = domains[name] else {
                findings.append(DriftFinding(object: object, domain: name, problem: "domain is missing"))
                continue
            }
            let wantRunning = (spec.powerState ?? .running) == .running
            if wantRunning != domain.state.isActive {
                findings.append(DriftFinding(object: object, domain: name, problem: "domain is \(domain.state), spec says powerState: \(wantRunning ? "running" : "stopped")"))
            }
            if let defined = domain.definedOwner, defined.generation != instance.generation {
                findings.append(DriftFinding(object: object, domain: name, problem: "domain is defined for generation \(defined.generation), the resource is at \(instance.generation)"))
            }
        }
        for domain in domains.values.sorted(by: { $0.name < $1.name }) {
            guard let owner = domain.owner, !ids.contains(owner.id) else { continue }
            findings.append(DriftFinding(object: domain.name, domain: domain.name, problem: "no instance wants this Stratus domain (owner \(owner.key) is gone)"))
        }
        return findings
    }

    /// Reboots an instance's domain (the guest is asked through ACPI).
    public func reboot(_ instance: StoredResource) async throws {
        guard let id = instance.metadata.id else { throw HypervisorError(operation: "reboot", message: "\(instance.key) has no id") }
        try await hypervisor.reboot(Self.domainName(id: id))
    }

    /// Re-queues an instance whenever libvirt reports its domain stopped, undefined or crashed,
    /// whoever did it; the reconcile then repairs it if the spec says otherwise.
    public func watch(_ enqueue: @escaping @Sendable (ResourceKey) async -> Void) async {
        let events: AsyncStream<DomainEvent>
        do {
            events = try hypervisor.lifecycleEvents()
        } catch {
            logger.warning("no lifecycle events; drift is found by resync only", metadata: ["stratus.error": "\(error)"])
            return
        }
        for await event in events where event.domain.hasPrefix("stratus-") && [1, 5, 6, 8].contains(event.type) {
            let id = String(event.domain.dropFirst("stratus-".count))
            if let instance = try? store.get(ec2Id: id) { await enqueue(instance.key) }
        }
    }

    /// The instance's NIC: the bridge of its network (`spec.network`, or the project's only one),
    /// a fixed IP from the network's subnet and a MAC address, both claimed in the store. A bridge
    /// that does not exist on this node yet (the network reconciler makes it) is left out of the
    /// domain, with a note, so the domain still starts.
    private func networkInterface(for resource: StoredResource, spec: InstanceSpec, id: String, node: String) throws -> (bridge: String?, mac: String?, ip: String?, note: String?) {
        let networks = try lookups.list(.network, project: resource.key.project).filter { !$0.isTerminating }
        let chosen = spec.network.flatMap { name in networks.first { $0.key.name == name } } ?? (networks.count == 1 ? networks.first : nil)
        guard let network = chosen, case .network(let networkSpec) = network.resource.spec else {
            return (nil, nil, nil, networks.isEmpty ? nil : "the project has several networks; set spec.network")
        }
        // The fixed IP and MAC are the instance's on its network whether or not the bridge exists
        // here yet (DHCP hands out the pair; the metadata service knows the instance by the IP).
        guard case .success(let subnet) = IPv4Network.parse(networkSpec.cidr) else {
            return (nil, nil, nil, "network \(network.key.name) has an invalid cidr \(networkSpec.cidr)")
        }
        guard let ip = try store.allocate(pool: Store.fixedIPPool, candidates: subnet.instanceAddresses.lazy.map(\.description), owner: resource.key) else {
            return (nil, nil, nil, "network \(network.key.name) (\(networkSpec.cidr)) has no free address left")
        }
        // 52:54:00 is QEMU's prefix; the rest comes from the id, with a fallback if that is taken.
        let hex = String(id.suffix(6))
        let derived = "52:54:00:\(hex.prefix(2)):\(hex.dropFirst(2).prefix(2)):\(hex.suffix(2))"
        let fallback = (0..<64).lazy.map { _ in String(format: "52:54:00:%02x:%02x:%02x", Int.random(in: 0...255), Int.random(in: 0...255), Int.random(in: 0...255)) }
        let mac = try store.allocate(pool: "mac", candidates: [derived] + Array(fallback), owner: resource.key)
        guard let bridge = networkSpec.bridge ?? networkSpec.vlan.map({ "br\($0)" }) ?? network.resource.status?.details["bridge"]?.stringValue else {
            return (nil, mac, ip, "network \(network.key.name) has no bridge yet (no vlan allocated)")
        }
        if hypervisor.domainType != "test" && !FileManager.default.fileExists(atPath: "/sys/class/net/\(bridge)") {
            return (nil, mac, ip, "bridge \(bridge) of network \(network.key.name) is not present on \(node) yet")
        }
        return (bridge, mac, ip, nil)
    }

    private func imageReference(_ image: String, project: String) -> ResourceKey {
        let parts = image.split(separator: "/", maxSplits: 1)
        if parts.count == 2 { return ResourceKey(kind: .image, project: String(parts[0]), name: String(parts[1])) }
        return ResourceKey(kind: .image, project: project, name: image)
    }

    private func pendingStatus(_ resource: StoredResource, node: String, now: String) -> ResourceStatus {
        var status = resource.resource.status ?? ResourceStatus()
        status.phase = "Pending"
        status.details["node"] = .string(node)
        status.setCondition(Condition(type: "Ready", status: "False", reason: "AwaitingNodeAgent", message: "placed on \(node), whose agent converges it", lastTransitionTime: now))
        return status
    }

    /// The instance's root disk: a qcow2 overlay on the image, for hypervisors that use files.
    private func prepareDisk(image: ImageSpec, directory: String) throws -> String? {
        guard hypervisor.domainType != "test" else { return nil }  // the test driver touches no files
        let overlay = (directory as NSString).appendingPathComponent("disk.qcow2")
        if FileManager.default.fileExists(atPath: overlay) { return overlay }
        guard image.source.hasPrefix("/") else {
            throw DiskError(description: "image source \(image.source) is not a local file; s3:// sources need the object store (a later issue)")
        }
        guard FileManager.default.fileExists(atPath: image.source) else {
            throw DiskError(description: "image file \(image.source) does not exist on this node")
        }
        try QemuImg.createOverlay(at: overlay, backing: image.source, format: image.format?.rawValue ?? "qcow2")
        return overlay
    }
}

/// A problem with an instance's disk.
struct DiskError: Error, CustomStringConvertible {
    var description: String
}
