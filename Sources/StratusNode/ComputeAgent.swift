import Foundation
import Logging
import StratusCompute
import StratusModel

/// Converges instance intents into libvirt domains on this node: the node side of compute.
///
/// Each instance is the domain `stratus-<id>`, whose metadata names its resource, generation
/// and a digest of its configuration, so after a crash the agent recognises (adopts) its
/// domains and redefines those of an older generation. It reads no store: everything it needs
/// is in the intent, and what it found goes back as an `InstanceReport`.
public struct ComputeAgent: Sendable {
    public let node: String
    private let hypervisor: any Hypervisor
    private let instanceDirectory: String
    private let images: ImageCache
    private let logger: Logger

    /// - Parameter dataDirectory: where instance disks and console logs go (`DATA/instances/<id>`).
    public init(node: String, hypervisor: any Hypervisor, dataDirectory: String, logger: Logger = Logger(label: "stratus.node.compute")) {
        self.node = node
        self.hypervisor = hypervisor
        // Absolute: the paths go into domain XML, and QEMU does not run in this process's directory.
        let absolute = URL(fileURLWithPath: dataDirectory).standardizedFileURL
        self.instanceDirectory = absolute.appendingPathComponent("instances").path
        self.images = ImageCache(dataDirectory: absolute.path, logger: logger)
        self.logger = logger
    }

    /// The end of an instance's serial console log (at most `limit` bytes, as EC2's
    /// GetConsoleOutput returns the last 64 KB); nil before the guest wrote one.
    public func consoleLog(instance id: String, limit: Int = 65536) -> String? {
        let path = (instanceDirectory as NSString).appendingPathComponent("\(id)/console.log")
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let size = try? handle.seekToEnd() else { return nil }
        try? handle.seek(toOffset: size > UInt64(limit) ? size - UInt64(limit) : 0)
        guard let data = try? handle.readToEnd() else { return "" }
        return String(decoding: data, as: UTF8.self)
    }

    /// The hypervisor's URI and domain type, for the node's status.
    public var hypervisorURI: String { hypervisor.uri }
    public var domainType: String { hypervisor.domainType }

    /// The node's capacity.
    public func capacity() async throws -> NodeCapacity { try await hypervisor.nodeInfo() }

    /// Defines (or redefines) and powers the instance's domain as the intent says.
    public func converge(_ intent: InstanceIntent) async throws(NodeError) -> InstanceReport {
        let domainName = intent.domainName
        let directory = (instanceDirectory as NSString).appendingPathComponent(intent.id)
        do {
            // Disks and console logs are the guest's data: owner-only, whatever the umask or a
            // pre-existing directory's mode. (QEMU runs as this user with qemu:///embed and as root
            // under this project's libvirtd; a libvirtd running QEMU as another user needs the
            // data directory on a path that user can reach.)
            for path in [instanceDirectory, directory] {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
                try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: path)
            }
        } catch {
            throw NodeError(.storage, "cannot create \(directory): \(error)")
        }
        // Fetching an image (a copy, or a download from another host) can take minutes: it runs off
        // the cooperative pool, so heartbeats and other calls go on meanwhile; below, the cache has it.
        if hypervisor.domainType != "test", let objects = intent.image.objects, !objects.isEmpty {
            let images = self.images
            do {
                try await ChildProcess.offPool { try images.prefetch(objects) }
            } catch let error as NodeError {
                throw error
            } catch {
                throw NodeError(.imageUnavailable, "cannot cache the image: \(error)")
            }
        }
        let disk = try prepareDisk(intent.image, directory: directory)
        // Kernels and ramdisks from the object store boot from the node's verified copies.
        let kernel = try intent.image.kernel.map { location throws(NodeError) in hypervisor.domainType == "test" ? location : try images.local(location, objects: intent.image.objects) }
        let ramdisk = try intent.image.ramdisk.map { location throws(NodeError) in hypervisor.domainType == "test" ? location : try images.local(location, objects: intent.image.objects) }
        var bridge = intent.nic?.bridge
        var nicNote = intent.nicNote
        if let wanted = bridge, hypervisor.domainType != "test", !FileManager.default.fileExists(atPath: "/sys/class/net/\(wanted)") {
            nicNote = "bridge \(wanted) of network \(intent.nic?.network ?? "?") is not present on \(node) yet"
            bridge = nil
            // Expected without host networking (make run): the status says so; not a warning.
            logger.debug("NIC left out: its bridge is not present", metadata: ["stratus.instance": "\(intent.id)", "stratus.bridge": "\(wanted)"])
        }
        // A volume is attached when the node can reach it: its file here, or the aoe initiator's device.
        var volumeStates: [String: String] = [:]
        var present: [DomainVolume] = []
        for volume in intent.volumes ?? [] {
            if hypervisor.domainType == "test" || FileManager.default.fileExists(atPath: volume.source) {
                present.append(volume)
            } else if volume.source.hasPrefix("/dev/etherd/") {
                volumeStates[volume.serial] = FileManager.default.fileExists(atPath: "/dev/etherd")
                    ? "AoETargetNotFound: \(volume.source) is not discovered on \(node) (aoe-discover)"
                    : "AoEInitiatorUnavailable: \(node) has no AoE initiator (the aoe kernel module) to reach \(volume.source)"
            } else {
                volumeStates[volume.serial] = "VolumeNotFound: \(volume.source) does not exist on \(node)"
            }
        }
        var definition = DomainDefinition(
            name: domainName, type: hypervisor.domainType, memoryMB: intent.memoryMB, vcpus: intent.vcpus,
            disk: disk, diskFormat: "qcow2", kernel: kernel, initrd: ramdisk, cmdline: intent.image.cmdline,
            consoleLog: (directory as NSString).appendingPathComponent("console.log"), bridge: bridge, mac: intent.nic?.mac,
            port: bridge == nil ? nil : InstanceDetails.port(instanceId: intent.id), owner: DomainOwner(project: intent.project, name: intent.name, id: intent.id, generation: intent.generation)
        )
        definition.volumes = present
        let config = DomainXML.configDigest(of: definition)
        do {
            var existing = try await hypervisor.domain(named: domainName)
            let wanted = DomainOwner(project: intent.project, name: intent.name, id: intent.id, generation: intent.generation, config: config)
            if existing == nil || existing?.definedOwner != wanted {
                definition.uuid = existing?.uuid
                try await hypervisor.define(xml: DomainXML.render(definition))
                logger.debug("domain defined", metadata: ["stratus.instance": "\(intent.id)", "stratus.domain": "\(domainName)", "stratus.generation": "\(intent.generation)"])
                if existing == nil { existing = DomainInfo(name: domainName, uuid: "", state: .shutoff, owner: wanted) }  // a new definition is shut off
            }
            var state = existing?.state ?? .shutoff
            var startedNow = false
            switch intent.powerState {
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
            var restartFrom: Int?
            if state.isActive, !startedNow, let live = existing?.owner, live.config != config { restartFrom = live.generation }
            try await attachVolumes(present, domain: domainName, active: state.isActive, states: &volumeStates)
            var report = InstanceReport(
                id: intent.id, node: node, domain: domainName, state: state, generation: intent.generation,
                settled: state.isActive == (intent.powerState == .running), restartRequiredFrom: restartFrom, bridge: bridge, nicNote: nicNote
            )
            report.volumes = volumeStates
            return report
        } catch let error as HypervisorError {
            throw NodeError(.hypervisor, error.description)
        } catch {
            throw NodeError(.hypervisor, "\(error)")
        }
    }

    /// Makes the domain's volume disks (serial `vol-…`) those of `wanted`: hot-plugged into the
    /// running guest and kept in its definition; others are unplugged. Records each wanted one's state.
    private func attachVolumes(_ wanted: [DomainVolume], domain: String, active: Bool, states: inout [String: String]) async throws {
        let defined = DomainXML.volumes(in: try await hypervisor.definedXML(of: domain) ?? "")
        let live = active ? DomainXML.volumes(in: try await hypervisor.xml(of: domain) ?? "") : defined
        for volume in wanted {
            let (inLive, inConfig) = (live[volume.serial] != nil, defined[volume.serial] != nil)
            if inLive && inConfig {
                states[volume.serial] = "attached"
                if active, let bytes = volume.bytes { await grow(volume, to: bytes, domain: domain) }
                continue
            }
            do {
                try await hypervisor.attachDevice(domain, xml: DomainXML.disk(volume), live: active && !inLive, config: !inConfig)
                states[volume.serial] = "attached"
                logger.info("volume attached", metadata: ["stratus.domain": "\(domain)", "stratus.volume": "\(volume.serial)", "stratus.device": "\(volume.device)"])
            } catch {
                states[volume.serial] = "HotPlugFailed: \(error)"
            }
        }
        // Unplugging asks the guest: a volume is reported `detaching` until the domain no longer has it.
        let keep = Set(wanted.map(\.serial))
        for serial in Set(defined.keys).union(live.keys) where !keep.contains(serial) {
            let device = live[serial] ?? defined[serial] ?? ""
            let stub = DomainXML.disk(DomainVolume(serial: serial, device: device, source: ""))
            do {
                try await hypervisor.detachDevice(domain, xml: stub, live: active && live[serial] != nil, config: defined[serial] != nil)
                logger.info("volume detach asked", metadata: ["stratus.domain": "\(domain)", "stratus.volume": "\(serial)"])
            } catch {
                logger.warning("cannot detach volume", metadata: ["stratus.domain": "\(domain)", "stratus.volume": "\(serial)", "stratus.error": "\(error)"])
            }
        }
        let still = Set(DomainXML.volumes(in: try await hypervisor.definedXML(of: domain) ?? "").keys)
            .union(active ? Set(DomainXML.volumes(in: try await hypervisor.xml(of: domain) ?? "").keys) : [])
        for serial in still where !keep.contains(serial) { states[serial] = "detaching: the guest has not released it yet" }
    }

    /// Tells a running guest its attached disk grew (`virDomainBlockResize`), when the size its
    /// export answers with is larger than what the guest has. A failure is logged and tried again
    /// at the next reconcile; the disk stays attached at its old size.
    private func grow(_ volume: DomainVolume, to bytes: UInt64, domain: String) async {
        do {
            let capacity = try await hypervisor.diskCapacity(domain, device: volume.device)
            guard capacity < bytes else { return }
            try await hypervisor.resizeDisk(domain, device: volume.device, bytes: bytes)
            logger.info("attached volume grown", metadata: ["stratus.domain": "\(domain)", "stratus.volume": "\(volume.serial)", "stratus.from": "\(capacity)", "stratus.to": "\(bytes)"])
        } catch {
            logger.warning("cannot tell the guest its volume grew", metadata: ["stratus.domain": "\(domain)", "stratus.volume": "\(volume.serial)", "stratus.error": "\(error)"])
        }
    }

    /// Powers off and undefines an instance's domain and removes its files; nothing to do is success.
    public func remove(instance id: String) async throws(NodeError) {
        let domainName = InstanceIntent.domainName(id: id)
        do {
            if let domain = try await hypervisor.domain(named: domainName) {
                if domain.state.isActive { try await hypervisor.destroy(domainName) }
                try await hypervisor.undefine(domainName)
            }
        } catch {
            throw NodeError(.hypervisor, "\(error)")
        }
        try? FileManager.default.removeItem(atPath: (instanceDirectory as NSString).appendingPathComponent(id))
    }

    /// Every domain of the node, with the Stratus owner its metadata names.
    public func domains() async throws(NodeError) -> [DomainInfo] {
        do { return try await hypervisor.listDomains() } catch { throw NodeError(.hypervisor, "\(error)") }
    }

    /// The state of every domain by name: a cheap listing for bulk resyncs.
    public func domainStates() async throws(NodeError) -> [String: DomainState] {
        do { return try await hypervisor.domainStates() } catch { throw NodeError(.hypervisor, "\(error)") }
    }

    /// The domain of this name, with its owner, if it exists.
    public func domain(named name: String) async throws(NodeError) -> DomainInfo? {
        do { return try await hypervisor.domain(named: name) } catch { throw NodeError(.hypervisor, "\(error)") }
    }

    /// Asks the instance's guest to reboot (ACPI).
    public func reboot(instance id: String) async throws(NodeError) {
        do { try await hypervisor.reboot(InstanceIntent.domainName(id: id)) } catch { throw NodeError(.hypervisor, "\(error)") }
    }

    /// Lifecycle events of Stratus domains, by instance id; nil when the hypervisor delivers none.
    public func events() -> AsyncStream<NodeEvent>? {
        let domainEvents: AsyncStream<DomainEvent>
        do {
            domainEvents = try hypervisor.lifecycleEvents()
        } catch {
            logger.warning("no lifecycle events; drift is found by resync only", metadata: ["stratus.node": "\(node)", "stratus.error": "\(error)"])
            return nil
        }
        let node = node
        return AsyncStream { continuation in
            let task = Task {
                for await event in domainEvents where event.domain.hasPrefix("stratus-") {
                    continuation.yield(NodeEvent(node: node, instanceId: String(event.domain.dropFirst("stratus-".count)), kind: event.kind))
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// The instance's root disk: a qcow2 overlay on the image, for hypervisors that use files.
    private func prepareDisk(_ image: ImageFiles, directory: String) throws(NodeError) -> String? {
        guard hypervisor.domainType != "test" else { return nil }  // the test driver touches no files
        let overlay = (directory as NSString).appendingPathComponent("disk.qcow2")
        if FileManager.default.fileExists(atPath: overlay) { return overlay }
        // An object-store image is fetched into the node's cache once and verified; the overlay is built on the copy.
        let base = try images.local(image.source, objects: image.objects)
        guard base.hasPrefix("/") else {
            throw NodeError(.imageUnavailable, "image source \(image.source) is neither a local file nor an object the controller located")
        }
        guard FileManager.default.fileExists(atPath: base) else {
            throw NodeError(.imageUnavailable, "image file \(base) does not exist on \(node)")
        }
        do {
            try QemuImg.createOverlay(at: overlay, backing: base, format: image.format)
        } catch {
            throw NodeError(.imageUnavailable, "\(error)")
        }
        return overlay
    }
}
