import Foundation
import Logging
import StratusCompute
import StratusModel
import StratusNode
import StratusStore

/// The controller's side of compute: turns each `Instance` into a self-contained intent for
/// the node it is placed on, and the node's report into the instance's status.
///
/// What needs the store happens here — the instance type and image are resolved, the node is
/// chosen by the `Scheduler`, the fixed IP and MAC are claimed — and the rest on the node
/// (`StratusNode.ComputeAgent`), reached through a `NodeTransport`: in-process by default.
public struct ComputeReconciler: Reconciler {
    public let name = "compute"
    public let kinds: Set<Kind> = [.instance]
    public let concurrency: Int
    private let store: Store
    private let transport: any NodeTransport
    private let scheduler: Scheduler
    private let locator: ObjectLocator?
    private let logger: Logger
    private let lookups: LookupCache

    /// - Parameter locator: finds `s3://` image files in the object store (nil: such images cannot be built here).
    /// - Parameter networksManaged: the server makes networks real on the node (`--host-network
    ///   on`): an instance then boots only once its network is Ready, so its guest finds the
    ///   bridge, its DHCP entry and its filter in place. Otherwise it boots at once, its NIC left
    ///   out while the bridge does not exist.
    public init(store: Store, transport: any NodeTransport, scheduler: Scheduler, locator: ObjectLocator? = nil, concurrency: Int = 8, networksManaged: Bool = false, logger: Logger = Logger(label: "stratus.compute")) {
        self.store = store
        self.networksManaged = networksManaged
        self.locator = locator
        self.transport = transport
        self.scheduler = scheduler
        self.concurrency = concurrency
        self.logger = logger
        self.lookups = LookupCache(store: store)
    }

    let networksManaged: Bool

    /// The libvirt domain name of an instance.
    public static func domainName(id: String) -> String { InstanceIntent.domainName(id: id) }

    public func reconcile(_ resource: StoredResource) async -> ReconcileResult {
        guard case .instance(let spec) = resource.resource.spec, let id = resource.metadata.id else {
            return .failed(reason: .notAnInstance, message: "\(resource.key) has no instance id", retryable: false)
        }
        let now = Timestamp.string(Date())
        do {
            guard let typeResource = try lookups.get(ResourceKey(kind: .instanceType, project: nil, name: spec.instanceType)),
                case .instanceType(let type) = typeResource.resource.spec, !typeResource.isTerminating
            else {
                return .failed(reason: .instanceTypeNotFound, message: "InstanceType \(spec.instanceType) does not exist; create it or change spec.instanceType", retryable: true)
            }
            let imageKey = imageReference(spec.image, project: resource.key.project)
            let files: ImageFiles
            if let imageResource = try lookups.get(imageKey), case .image(let image) = imageResource.resource.spec, !imageResource.isTerminating {
                var objects: [String: ImageObject]?
                if [image.source, image.kernel, image.ramdisk].contains(where: { $0?.hasPrefix("s3://") == true }) {
                    guard let locator else {
                        return .failed(reason: .imageUnavailable, message: "\(imageKey) comes from the object store, which this controller does not serve", retryable: false)
                    }
                    let found = try locator.objects(of: image)
                    guard found.missing.isEmpty else {
                        return .failed(reason: .imageUnavailable, message: "\(imageKey) is not available: " + found.missing.joined(separator: "; "), retryable: true)
                    }
                    objects = found.objects
                }
                files = ImageFiles(source: image.source, format: image.format?.rawValue ?? "qcow2", kernel: image.kernel, ramdisk: image.ramdisk, cmdline: image.cmdline, objects: objects)
            } else if let built = InstanceDetails(resource.resource.status).image.flatMap(ImageFiles.init(recorded:)) {
                // As on EC2, an instance outlives its image: it keeps the files it was built from.
                files = built
            } else {
                return .failed(reason: .imageNotFound, message: "\(imageKey) does not exist; create it or change spec.image", retryable: true)
            }
            let node: String
            do {
                node = try await scheduler.place(resource, needs: type, zone: spec.availabilityZone)
            } catch let unschedulable as Scheduler.Unschedulable {
                return .failed(reason: .unschedulable, message: unschedulable.description, retryable: true)
            }
            let (nic, nicNote) = try networkInterface(for: resource, spec: spec, id: id)
            if let waiting = nic.waitingFor {
                return .requeue(pendingStatus(resource, node: node, nic: nic, message: waiting, reason: .waitingForNetwork, now: now), after: .seconds(1))
            }
            var intent = InstanceIntent(
                id: id, project: resource.key.project, name: resource.key.name, generation: resource.generation,
                memoryMB: type.memoryMB, vcpus: type.vcpus,
                image: files,
                powerState: spec.powerState ?? .running, nic: nic.intent, nicNote: nicNote
            )
            let volumes = try attachedVolumes(of: resource, node: node)
            intent.volumes = volumes.isEmpty ? nil : volumes
            switch await converge(intent, on: node) {
            case .success(let report):
                return status(resource, intent: intent, report: report, nic: nic, now: now)
            case .failure(let error) where error.code == .unreachable:
                // Another node's agent converges it; until one is connected the instance waits.
                return .requeue(pendingStatus(resource, node: node, nic: nic, message: error.message, now: now), after: .seconds(30))
            case .failure(let error) where error.code == .lost:
                var message = error.message
                if spec.restartPolicy == .reschedule {
                    do {
                        // The new node is recorded before anything is started there, so a copy
                        // on a node the store does not name is always a stale one (`removeIfStale`).
                        let target = try await scheduler.place(resource, needs: type, zone: spec.availabilityZone, avoiding: [node])
                        logger.warning("instance rescheduled off a lost node", metadata: ["stratus.instance": "\(resource.key)", "stratus.from": "\(node)", "stratus.to": "\(target)"])
                        let moved = pendingStatus(resource, node: target, nic: nic, message: "rescheduled from \(node): \(error.message)", reason: .rescheduled, now: now)
                        return .requeue(moved, after: .milliseconds(50))
                    } catch let unschedulable as Scheduler.Unschedulable {
                        message += "; restartPolicy is reschedule, but \(unschedulable.description)"
                    }
                }
                // What runs there is not known: not Ready, and looked at again when the node is back.
                var status = pendingStatus(resource, node: node, nic: nic, message: message, reason: .nodeLost, now: now)
                status.phase = "Unknown"
                return .requeue(status, after: .seconds(30))
            case .failure(let error):
                return .failed(reason: error.code.reason, message: error.message, retryable: true)
            }
        } catch {
            return .failed(reason: .reconcileError, message: "\(error)", retryable: true)
        }
    }

    /// The exported volumes attached to an instance, as its node reaches them: the backing file
    /// when the volume lives on the instance's node, else the AoE initiator's device.
    ///
    /// Decided by the attachment and the export's address, not by the volume's phase: a wire
    /// check that misses once must not unplug a disk from a running guest. Two volumes asking for
    /// one device: the first by id gets it (the EC2 API refuses the second; a manifest may not).
    private func attachedVolumes(of resource: StoredResource, node: String) throws -> [DomainVolume] {
        let wanted = try store.list(kind: .volume, project: resource.key.project).compactMap { volume -> DomainVolume? in
            guard !volume.isTerminating, case .volume(let spec) = volume.resource.spec, let attachment = spec.attachment, attachment.instance == resource.key.name,
                let id = volume.metadata.id, let status = volume.resource.status, let aoe = status.details["aoe"]?.stringValue,
                // The volume reconciler names the one instance that may hold it (after the previous one let go).
                status.details["attachedTo"]?.stringValue == resource.key.name,
                status.details["backing"] != nil || status.details["storageNode"]?.stringValue != node
            else { return nil }
            let device = String((attachment.device ?? "/dev/vdb").dropFirst("/dev/".count))
            let bytes = status.details["exportedBytes"]?.stringValue.flatMap { UInt64($0) }
            if status.details["storageNode"]?.stringValue == node, let backing = status.details["backing"]?.stringValue {
                return DomainVolume(serial: id, device: device, source: backing, block: backing.hasPrefix("/dev/"), bytes: bytes)
            }
            return DomainVolume(serial: id, device: device, source: "/dev/etherd/\(aoe)", block: true, bytes: bytes)
        }.sorted { $0.serial < $1.serial }
        var devices: Set<String> = []
        return wanted.filter { devices.insert($0.device).inserted }.sorted { $0.device < $1.device }
    }

    /// The transport's answer as a value: a `catch … where` on the typed error inside `reconcile`
    /// crashed the Swift 6.3 compiler (SIL ownership verifier), a switch over a `Result` does not.
    private func converge(_ intent: InstanceIntent, on node: String) async -> Result<InstanceReport, NodeError> {
        do {
            return .success(try await transport.converge(intent, on: node))
        } catch {
            return .failure(error)
        }
    }

    /// The instance's status from what its node reported.
    private func status(_ resource: StoredResource, intent: InstanceIntent, report: InstanceReport, nic: Allocated, now: String) -> ReconcileResult {
        var status = resource.resource.status ?? ResourceStatus()
        InstanceDetails(
            node: report.node, domain: report.domain, domainState: report.state.description,
            network: report.nicNote ?? report.bridge.map { "bridge \($0)" }, mac: nic.mac, ip: nic.ip, image: intent.image.recorded
        ).write(into: &status)
        status.details["volumes"] = report.volumes.isEmpty ? nil : .object(report.volumes.mapValues(JSONValue.string))
        if let live = report.restartRequiredFrom {
            status.setCondition(Condition(type: .configApplied, status: .false, reason: .restartRequired, message: "the running domain still has generation \(live)'s memory, vCPUs or disks; set powerState: stopped, then running, to apply generation \(intent.generation)", lastTransitionTime: now))
        } else if status.condition(.configApplied) != nil {
            status.setCondition(Condition(type: .configApplied, status: .true, reason: .applied, lastTransitionTime: now))
        }
        let where_ = "domain \(report.domain) is \(report.state)"
        switch (intent.powerState, report.settled) {
        case (.running, true):
            status.phase = "Running"
            status.setCondition(Condition(type: .ready, status: .true, reason: .domainRunning, message: "\(where_) on \(report.node)", lastTransitionTime: now))
        case (.stopped, true):
            status.phase = "Stopped"
            status.setCondition(Condition(type: .ready, status: .true, reason: .domainStopped, message: "\(where_) as requested", lastTransitionTime: now))
        default:
            status.phase = "Pending"
            status.setCondition(Condition(type: .ready, status: .false, reason: .domainNotInState, message: where_, lastTransitionTime: now))
            return .requeue(status, after: .seconds(1))
        }
        return .done(status)
    }

    public func finalize(_ resource: StoredResource) async -> ReconcileResult {
        guard let id = resource.metadata.id else { return .done(ResourceStatus()) }
        // The node it was placed on; one never recorded may still have been started anywhere.
        let recorded = InstanceDetails(resource.resource.status).node
        let nodes = recorded.map { [$0] } ?? transport.nodes
        for node in nodes {
            do {
                try await transport.remove(instance: id, on: node)
            } catch {
                if error.code == .unreachable && recorded == nil { continue }
                return .failed(reason: .teardownFailed, message: error.message, retryable: true)
            }
        }
        await scheduler.release(resource.key)
        return .done(ResourceStatus())
    }

    /// Removes Stratus-owned domains that no instance wants (after a crash, or a resource
    /// removed while the controller was down), on every node this controller reaches. Domains
    /// Stratus did not define are left alone.
    public func sweep(_ wanted: [StoredResource]) async -> [String] {
        let ids = Set(wanted.compactMap(\.metadata.id))
        var removed: [String] = []
        for node in transport.nodes {
            guard let domains = try? await transport.domains(on: node) else { continue }
            for domain in domains {
                if await removeIfOrphan(domain, on: node, known: ids) {
                    removed.append(domain.name)
                } else if await removeIfStale(domain, on: node) {
                    removed.append(domain.name)
                }
            }
        }
        return removed
    }

    /// Removes the copies a node holds of instances placed on another node since (moved off it
    /// while it was lost): called when the node comes back, before its instances converge.
    public func reclaim(node: String) async -> [String] {
        guard let domains = try? await transport.domains(on: node) else { return [] }
        var removed: [String] = []
        for domain in domains where await removeIfStale(domain, on: node) { removed.append(domain.name) }
        return removed
    }

    /// Removes a Stratus-owned domain on `node` whose instance the store places on another node.
    /// One whose instance has no node recorded yet is left alone: it may be the first placement,
    /// whose status is written after the domain starts.
    private func removeIfStale(_ domain: DomainInfo, on node: String) async -> Bool {
        guard let owner = domain.owner, let instance = try? store.get(ec2Id: owner.id), let placed = InstanceDetails(instance.resource.status).node, placed != node else {
            return false
        }
        do {
            try await transport.remove(instance: owner.id, on: node)
            logger.warning("removed a stale copy of a rescheduled instance", metadata: ["stratus.domain": "\(domain.name)", "stratus.node": "\(node)", "stratus.placedOn": "\(placed)"])
            return true
        } catch {
            logger.error("could not remove a stale copy", metadata: ["stratus.domain": "\(domain.name)", "stratus.node": "\(node)", "stratus.error": "\(error)"])
            return false
        }
    }

    /// Removes a Stratus-owned domain whose instance is neither in `known` nor in the store.
    private func removeIfOrphan(_ domain: DomainInfo, on node: String, known ids: Set<String>) async -> Bool {
        guard let owner = domain.owner, !ids.contains(owner.id) else { return false }
        // The instance may have been created after `known` was read; only a missing one is an orphan.
        if (try? store.get(ec2Id: owner.id)) != nil { return false }
        do {
            try await transport.remove(instance: owner.id, on: node)
            logger.warning("removed a domain no instance wants", metadata: ["stratus.domain": "\(domain.name)", "stratus.owner": "\(owner.key)", "stratus.node": "\(node)"])
            return true
        } catch {
            logger.error("could not remove an orphaned domain", metadata: ["stratus.domain": "\(domain.name)", "stratus.error": "\(error)"])
            return false
        }
    }

    /// A periodic resync in bulk: one listing of domain states per node and one query instead
    /// of a reconcile per instance. Removes `stratus-<id>` domains whose id no instance has
    /// (their metadata is read only then), and returns every instance but those whose last
    /// reconcile of the current generation succeeded and settled (Running or Stopped, with its
    /// NIC if it has a network) and whose domain on its node is in the wanted power state. A
    /// domain redefined behind Stratus' back in the same state is caught by the full resync and `drift`.
    public func bulkResync() async -> [ResourceKey]? {
        guard let instances = try? store.instanceSummaries() else { return nil }
        let ids = Set(instances.compactMap(\.id))
        var placedOn: [String: String] = [:]
        for instance in instances { if let id = instance.id, let node = instance.node { placedOn[id] = node } }
        var states: [String: [String: DomainState]] = [:]
        for node in transport.nodes {
            guard let nodeStates = try? await transport.domainStates(on: node) else { return nil }
            states[node] = nodeStates
            for name in nodeStates.keys where name.hasPrefix("stratus-") {
                let id = String(name.dropFirst("stratus-".count))
                if !ids.contains(id) {
                    if let domain = try? await transport.domain(named: name, on: node) { _ = await removeIfOrphan(domain, on: node, known: ids) }
                } else if let placed = placedOn[id], placed != node {
                    // A copy left on a node the instance was moved off while that node was lost.
                    if let domain = try? await transport.domain(named: name, on: node) { _ = await removeIfStale(domain, on: node) }
                }
            }
        }
        return instances.filter { instance in
            guard !instance.terminating, let id = instance.id, instance.observedGeneration == instance.generation,
                instance.synced == .true, let node = instance.node, let state = states[node]?[Self.domainName(id: id)]
            else { return true }
            if let network = instance.network, !network.hasPrefix("bridge ") { return true }  // a NIC still left out
            let wantRunning = (instance.powerState ?? "running") == "running"
            return instance.phase != (wantRunning ? "Running" : "Stopped") || state.isActive != wantRunning
        }.map(\.key)
    }

    /// Compares the store's instances with the domains of the nodes this controller reaches, changing nothing.
    public func drift() async throws -> [DriftFinding] {
        var domains: [String: [String: DomainInfo]] = [:]
        for node in transport.nodes {
            domains[node] = Dictionary(try await transport.domains(on: node).map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        }
        var findings: [DriftFinding] = []
        var ids = Set<String>()
        for instance in try store.list(kind: .instance) {
            guard let id = instance.metadata.id, case .instance(let spec) = instance.resource.spec else { continue }
            ids.insert(id)
            guard !instance.isTerminating, let node = InstanceDetails(instance.resource.status).node, let onNode = domains[node] else { continue }
            let name = Self.domainName(id: id)
            let object = instance.key.description
            guard let domain = onNode[name] else {
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
        for domain in domains.values.flatMap(\.values).sorted(by: { $0.name < $1.name }) {
            guard let owner = domain.owner, !ids.contains(owner.id) else { continue }
            findings.append(DriftFinding(object: domain.name, domain: domain.name, problem: "no instance wants this Stratus domain (owner \(owner.key) is gone)"))
        }
        return findings
    }

    /// Moves what can move off a node: each instance with `restartPolicy: reschedule` is placed
    /// on another node (recorded first, `Pending, Rescheduled`) and its copy here removed, which
    /// the node reports and the instance's reconcile then starts it on the new node. The rest
    /// stays, with the reason. The caller cordons the node first.
    public func drain(node: String) async throws -> [DrainOutcome] {
        var outcomes: [DrainOutcome] = []
        for placement in try store.instancePlacements() where placement.node == node {
            guard let resource = try store.get(placement.key), !resource.isTerminating, case .instance(let spec) = resource.resource.spec, let id = resource.metadata.id else { continue }
            let name = "\(placement.key.project)/\(placement.key.name)"
            guard spec.restartPolicy == .reschedule else {
                outcomes.append(DrainOutcome(instance: name, moved: false, reason: "restartPolicy is stay: it keeps running here (set restartPolicy: reschedule to let drain move it)"))
                continue
            }
            guard let typeResource = try lookups.get(ResourceKey(kind: .instanceType, project: nil, name: spec.instanceType)), case .instanceType(let type) = typeResource.resource.spec else {
                outcomes.append(DrainOutcome(instance: name, moved: false, reason: "its InstanceType \(spec.instanceType) does not exist"))
                continue
            }
            let target: String
            do {
                target = try await scheduler.place(resource, needs: type, zone: spec.availabilityZone, avoiding: [node])
            } catch let unschedulable as Scheduler.Unschedulable {
                outcomes.append(DrainOutcome(instance: name, moved: false, reason: unschedulable.description))
                continue
            }
            var status = resource.resource.status ?? ResourceStatus()
            status.phase = "Pending"
            var details = InstanceDetails(status)
            details.node = target
            details.write(into: &status)
            status.setCondition(Condition(type: .ready, status: .false, reason: .rescheduled, message: "drained from \(node); starting on \(target)", lastTransitionTime: Timestamp.string(Date())))
            _ = try store.updateStatus(placement.key, status)
            do {
                try await transport.remove(instance: id, on: node)
                outcomes.append(DrainOutcome(instance: name, moved: true, to: target))
            } catch {
                outcomes.append(DrainOutcome(instance: name, moved: true, to: target, reason: "its copy on \(node) stays until the next resync removes it: \(error.message)"))
            }
            logger.info("instance drained", metadata: ["stratus.instance": "\(placement.key)", "stratus.from": "\(node)", "stratus.to": "\(target)"])
        }
        return outcomes
    }

    /// The end of an instance's console log, read by its node.
    public func consoleLog(_ instance: StoredResource) async throws -> String? {
        guard let id = instance.metadata.id, let node = InstanceDetails(instance.resource.status).node else { return nil }
        return try await transport.consoleLog(instance: id, on: node)
    }

    /// Reboots an instance's guest on its node (the guest is asked through ACPI).
    public func reboot(_ instance: StoredResource) async throws {
        guard let id = instance.metadata.id, let node = InstanceDetails(instance.resource.status).node else {
            throw NodeError(.unreachable, "\(instance.key) is not placed on a node yet")
        }
        try await transport.reboot(instance: id, on: node)
    }

    /// Re-queues an instance whenever its node reports its domain stopped, undefined or crashed,
    /// whoever did it; the reconcile then repairs it if the spec says otherwise.
    ///
    /// Also re-queues every instance placed on a node that is lost or comes back, so their
    /// status says so at once (`NodeLost`) and they converge again when it is back.
    public func watch(_ enqueue: @escaping @Sendable (ResourceKey) async -> Void) async {
        let transport = self.transport
        let store = self.store
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await event in transport.events() where event.kind.endsGuest {
                    if let instance = try? store.get(ec2Id: event.instanceId) { await enqueue(instance.key) }
                }
            }
            group.addTask { [self] in
                for await node in transport.nodeChanges() {
                    // A node back from being lost first loses what was moved off it.
                    if transport.nodes.contains(node) { _ = await reclaim(node: node) }
                    for placement in (try? store.instancePlacements()) ?? [] where placement.node == node { await enqueue(placement.key) }
                }
            }
        }
    }

    /// What the controller claimed for an instance's NIC.
    struct Allocated {
        var network: String?
        var mac: String?
        var ip: String?
        var bridge: String?
        /// Why the instance may not boot yet: its network is not Ready on the node.
        var waitingFor: String?

        var intent: NICIntent? {
            guard let network, let mac, let bridge else { return nil }
            return NICIntent(network: network, mac: mac, ip: ip, bridge: bridge)
        }
    }

    /// The instance's NIC: the bridge of its network (`spec.network`, or the project's only one),
    /// a fixed IP from the network's subnet and a MAC address, both claimed in the store whether
    /// or not the bridge exists yet (DHCP hands out the pair; the metadata service knows the
    /// instance by the IP). Returns why the NIC is left out, when it is.
    private func networkInterface(for resource: StoredResource, spec: InstanceSpec, id: String) throws -> (Allocated, note: String?) {
        let networks = try lookups.list(.network, project: resource.key.project).filter { !$0.isTerminating }
        let chosen = spec.network.flatMap { name in networks.first { $0.key.name == name } } ?? (networks.count == 1 ? networks.first : nil)
        if networks.isEmpty, networksManaged, spec.network == nil {
            // As the seed did: a project's first instance gets the project a network (its VLAN
            // and /24 numbered by the network reconciler); the instance boots once it is Ready.
            try Self.makeDefaultNetwork(project: resource.key.project, in: store)
            var waiting = Allocated()
            waiting.waitingFor = "waiting for the project's network \(Self.defaultNetwork), made for its first instance, to be Ready"
            return (waiting, nil)
        }
        guard let network = chosen, case .network(let networkSpec) = network.resource.spec else {
            return (Allocated(), networks.isEmpty ? nil : "the project has several networks; set spec.network")
        }
        guard let cidr = networkSpec.subnet(network.resource.status) else {
            // Its subnet comes from the private range once the network reconciler numbered it.
            var waiting = Allocated()
            if networksManaged { waiting.waitingFor = "waiting for network \(network.key.name) to get its subnet" }
            return (waiting, "network \(network.key.name) has no subnet yet")
        }
        guard case .success(let subnet) = IPv4Network.parse(cidr) else {
            return (Allocated(), "network \(network.key.name) has an invalid cidr \(cidr)")
        }
        guard let ip = try store.allocate(pool: Store.fixedIPPool, candidates: subnet.instanceAddresses.lazy.map(\.description), owner: resource.key) else {
            return (Allocated(), "network \(network.key.name) (\(cidr)) has no free address left")
        }
        // 52:54:00 is QEMU's prefix; the rest comes from the id, with a fallback if that is taken.
        let hex = String(id.suffix(6))
        let derived = "52:54:00:\(hex.prefix(2)):\(hex.dropFirst(2).prefix(2)):\(hex.suffix(2))"
        let fallback = (0..<64).lazy.map { _ in String(format: "52:54:00:%02x:%02x:%02x", Int.random(in: 0...255), Int.random(in: 0...255), Int.random(in: 0...255)) }
        let mac = try store.allocate(pool: "mac", candidates: [derived] + Array(fallback), owner: resource.key)
        var allocated = Allocated(network: network.key.name, mac: mac, ip: ip)
        if networksManaged, network.resource.status?.phase != "Ready" {
            allocated.waitingFor = "waiting for network \(network.key.name) to be Ready on the node (its bridge, DHCP and packet filter)"
        }
        guard let bridge = networkSpec.bridge ?? networkSpec.vlan.map({ "br\($0)" }) ?? network.resource.status?.details["bridge"]?.stringValue else {
            return (allocated, "network \(network.key.name) has no bridge yet (no vlan allocated)")
        }
        allocated.bridge = bridge
        return (allocated, nil)
    }

    /// The network made for a project's first instance when the server manages host networking.
    public static let defaultNetwork = "default"

    /// Applies the project's `default` Network (no CIDR: the private range's /24 of its VLAN),
    /// by field manager `stratus` in apply set `networks`, unless the project has one.
    static func makeDefaultNetwork(project: String, in store: Store) throws {
        guard try store.get(ResourceKey(kind: .network, project: project, name: defaultNetwork)) == nil else { return }
        let resource = Resource(metadata: ObjectMeta(name: defaultNetwork, project: project), spec: .network(NetworkSpec()))
        try store.apply([try Admission.document(for: resource, origin: "<first instance of project \(project)>")], options: ApplyOptions(applySet: "networks", manager: "stratus"))
    }

    private func imageReference(_ image: String, project: String) -> ResourceKey {
        let parts = image.split(separator: "/", maxSplits: 1)
        if parts.count == 2 { return ResourceKey(kind: .image, project: String(parts[0]), name: String(parts[1])) }
        return ResourceKey(kind: .image, project: project, name: image)
    }

    private func pendingStatus(_ resource: StoredResource, node: String, nic: Allocated, message: String, reason: ConditionReason = .awaitingNodeAgent, now: String) -> ResourceStatus {
        var status = resource.resource.status ?? ResourceStatus()
        status.phase = "Pending"
        var details = InstanceDetails(status)
        details.node = node
        details.mac = nic.mac
        details.ip = nic.ip
        details.write(into: &status)
        status.setCondition(Condition(type: .ready, status: .false, reason: reason, message: message, lastTransitionTime: now))
        return status
    }
}
