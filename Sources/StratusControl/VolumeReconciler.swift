import Foundation
import Logging
import StratusModel
import StratusStorage
import StratusStore

/// Converges volumes on this storage node: each gets a cluster-unique AoE address from the
/// store's allocation table, a backing store and a vblade export (`BlockExport`), and is
/// `Available` only when its target answers on the wire with the volume's size (`AoEWireCheck`).
/// Every reconcile and resync checks again; a target that stopped answering is `Ready=False`
/// and its export is restarted. Without `--aoe-interface` nothing is exported, and the volume
/// says so.
///
/// AoE addresses: pool `aoe`, values `e<shelf>.<slot>`, shelves 1–65534 and slots 0–254 (shelf
/// 0xffff and slot 0xff are Query Config's broadcast; shelf 0 is left to hand-made exports), the
/// lowest free first. The table's primary key (pool, value) makes two volumes sharing an address
/// impossible, whichever controller allocates.
public struct VolumeReconciler: Reconciler {
    public let name = "volume"
    public let kinds: Set<Kind> = [.volume]
    public let concurrency = 16

    public static let aoePool = "aoe"

    /// The export of this node and how to check it, when it exports volumes.
    public struct Storage: Sendable {
        public var export: any BlockExport
        public var check: any AoEWireCheck
        public init(export: any BlockExport, check: any AoEWireCheck) {
            self.export = export
            self.check = check
        }
    }

    let store: Store
    let storage: Storage?
    let node: String
    let logger: Logger
    let enqueue = Enqueuer()

    /// The controller's enqueue, kept from `watch`, to reconcile an instance whose volumes changed.
    final class Enqueuer: @unchecked Sendable {
        private let lock = NSLock()
        private var body: (@Sendable (ResourceKey) async -> Void)?
        func set(_ body: @escaping @Sendable (ResourceKey) async -> Void) { lock.withLock { self.body = body } }
        func instance(_ key: ResourceKey) async { if let body = lock.withLock({ self.body }) { await body(key) } }
        /// Enqueues `key` once now and once after `delay`, by when the volume's new status (which
        /// the instance's reconcile reads) is surely stored.
        func instanceNowAndAfter(_ key: ResourceKey, _ delay: Duration) async {
            await instance(key)
            Task {
                try? await Task.sleep(for: delay)
                await self.instance(key)
            }
        }
    }

    public func watch(_ enqueue: @escaping @Sendable (ResourceKey) async -> Void) async {
        self.enqueue.set(enqueue)
    }

    /// How long a deleted volume's AoE address is held back before another volume may get it: an
    /// initiator that still knows the old target (a host that did not flush it, a guest still
    /// holding it) must not reach the next volume's blocks under the same name. Linux's aoe
    /// driver fails a silent target after `aoe_deadsecs` (180 s by default); ten minutes is well past it.
    let addressQuarantine: Duration

    public init(store: Store, storage: Storage?, node: String, addressQuarantine: Duration = .seconds(600), logger: Logger = Logger(label: "stratus.volume")) {
        self.store = store
        self.storage = storage
        self.node = node
        self.addressQuarantine = addressQuarantine
        self.logger = logger
    }

    /// Every AoE address in allocation order, lazily.
    static var addresses: some Sequence<String> {
        (UInt16(1)...UInt16(65534)).lazy.flatMap { shelf in (UInt8(0)...UInt8(254)).lazy.map { "e\(shelf).\($0)" } }
    }

    static func parse(_ address: String) -> (shelf: UInt16, slot: UInt8)? {
        guard address.hasPrefix("e") else { return nil }
        let parts = address.dropFirst().split(separator: ".")
        // Shelf 0xffff and slot 0xff are Query Config's broadcast, never a target's.
        guard parts.count == 2, let shelf = UInt16(parts[0]), let slot = UInt8(parts[1]), shelf != AoE.everyShelf, slot != AoE.everySlot else { return nil }
        return (shelf, slot)
    }

    public func reconcile(_ resource: StoredResource) async -> ReconcileResult {
        guard case .volume(let spec) = resource.resource.spec, let id = resource.metadata.id else {
            return .failed(reason: .wrongKind, message: "\(resource.key) is not a volume with an id", retryable: false)
        }
        var status = resource.resource.status ?? ResourceStatus()
        let now = Timestamp.string(Date())
        let address: String
        do {
            guard let allocated = try store.allocate(pool: Self.aoePool, candidates: Self.addresses, owner: resource.key, quarantine: addressQuarantine) else {
                return .failed(reason: .aoeAddressesExhausted, message: "every AoE shelf and slot is taken; delete volumes", retryable: true)
            }
            address = allocated
        } catch {
            return .failed(reason: .storageError, message: "cannot allocate an AoE address: \(error)", retryable: true)
        }
        guard let (shelf, slot) = Self.parse(address) else {
            return .failed(reason: .storageError, message: "the stored AoE address \(address) is not e<shelf>.<slot>", retryable: false)
        }
        status.details["aoe"] = .string(address)
        status.details["storageNode"] = .string(node)
        let bytes = Int64(spec.sizeGB) << 30
        guard let storage else {
            status.phase = "Pending"
            status.details["interface"] = nil
            status.setCondition(Condition(type: .ready, status: .false, reason: .aoeInterfaceNotConfigured, message: "this server exports no volumes: start it with --aoe-interface IF (the interface vblade exports on) and --aoe-check-interface IF (another port of that Ethernet segment, from which it checks them)", lastTransitionTime: now))
            return .done(status)
        }
        status.details["interface"] = .string(storage.export.interface)
        // A volume made from a snapshot starts with its blocks: it waits until the snapshot is taken.
        var source: String?
        if let name = spec.snapshot, status.details["backing"] == nil {
            let snapshot = try? store.get(ResourceKey(kind: .snapshot, project: resource.key.project, name: name))
            guard let snapshot, snapshot.resource.status?.phase == "Completed", let file = snapshot.resource.status?.details["file"]?.stringValue else {
                status.phase = "Pending"
                status.setCondition(Condition(type: .ready, status: .false, reason: .waitingForSnapshot, message: "snapshot \(name) is not completed yet", lastTransitionTime: now))
                return .requeue(status, after: .seconds(2))
            }
            if let size = snapshot.resource.status?.details["sizeGB"]?.stringValue.flatMap(Int.init), size > spec.sizeGB {
                return .failed(reason: .storageError, message: "snapshot \(name) holds \(size) GB, more than the volume's \(spec.sizeGB) GB; make the volume at least \(size) GB", retryable: false)
            }
            source = file
        }
        let report: ExportReport
        do {
            report = try await storage.export.ensure(ExportIntent(volume: id, bytes: bytes, shelf: shelf, slot: slot, source: source))
        } catch {
            // An attached or available volume keeps its phase (its guest keeps the disk); Ready says what is wrong.
            if !["Available", "Attached", "Detaching"].contains(status.phase ?? "") { status.phase = "Failed" }
            status.setCondition(Condition(type: .ready, status: .false, reason: .storageError, message: "\(error)", lastTransitionTime: now))
            return .requeue(status, after: .seconds(5))
        }
        status.details["backing"] = .string(report.backing)
        let wanted = UInt64(bytes) / 512
        let answer: AoE.Identity?
        do {
            answer = try await storage.check.identify(shelf: shelf, slot: slot, attempts: 10)
        } catch {
            // The check itself cannot ask (its interface is down): nothing is known of the export, so it is not restarted.
            status.setCondition(Condition(type: .ready, status: .false, reason: .storageError, message: "the wire check cannot ask on \(storage.check.interface): \(error)", lastTransitionTime: now))
            return .requeue(status, after: .seconds(5))
        }
        let previouslyMissed = resource.resource.status?.condition(.ready)?.reason == .exportNotAnswering
        if let answer, answer.sectors == wanted {
            if !["Attached", "Detaching"].contains(status.phase ?? "") { status.phase = "Available" }
            // The size on the wire, which the compute side gives a running guest when it grew.
            let exported = "\(answer.sectors * 512)"
            if status.details["exportedBytes"]?.stringValue != exported {
                status.details["exportedBytes"] = .string(exported)
                if let holder = status.details["attachedTo"]?.stringValue { await enqueue.instanceNowAndAfter(ResourceKey(kind: .instance, project: resource.key.project, name: holder), .seconds(1)) }
            }
            status.setCondition(Condition(type: .ready, status: .true, reason: .volumeExported, message: "\(address) answers on \(storage.check.interface) with \(answer.sectors) sectors (\(spec.sizeGB) GB)", lastTransitionTime: now))
            return await attachment(resource, spec: spec, id: id, status: status, now: now)
        }
        let why = answer.map { "\(address) answers with \($0.sectors) sectors, not the volume's \(wanted)" }
            ?? "\(address) does not answer Query Config and IDENTIFY on \(storage.check.interface)\(report.pid == nil ? " (vblade is not running)" : "")"
        // A volume that was exported keeps its phase: a check that misses must not take a disk from its guest.
        if !["Available", "Attached", "Detaching"].contains(status.phase ?? "") { status.phase = "Pending" }
        // The first miss is looked at again; a second in a row restarts the export.
        status.setCondition(Condition(type: .ready, status: .false, reason: .exportNotAnswering, message: why + (previouslyMissed ? "; its export is restarted" : "; checking again"), lastTransitionTime: now))
        if previouslyMissed {
            logger.warning("volume export not answering; restarting it", metadata: ["stratus.volume": "\(id)", "stratus.aoe": "\(address)", "stratus.reason": "\(why)"])
            do { try await storage.export.restart(volume: id) } catch {
                logger.error("cannot restart the export", metadata: ["stratus.volume": "\(id)", "stratus.error": "\(error)"])
            }
        }
        return .requeue(status, after: .seconds(2))
    }

    /// An exported volume's attachment, as the instances' nodes report it (`status.details.volumes`
    /// of an instance: the volume's state there, absent once the domain no longer has it).
    ///
    /// `details.attachedTo` names the one instance the compute side may give the disk to. It moves
    /// to a new instance only once the previous one has released the disk (its guest let go), so
    /// one volume is never in two domains; meanwhile the volume is `Detaching`. `Attached` once the
    /// instance's node reports `attached`. The instances concerned are enqueued whenever their part
    /// changes or their node has not answered for this volume, and the volume looks again until settled.
    func attachment(_ resource: StoredResource, spec: VolumeSpec, id: String, status: ResourceStatus, now: String) async -> ReconcileResult {
        var status = status
        let project = resource.key.project
        func state(on name: String) -> String? {
            (try? store.get(ResourceKey(kind: .instance, project: project, name: name)))?.resource.status?.details["volumes"]?.objectValue?[id]?.stringValue
        }
        func enqueue(_ name: String) async { await self.enqueue.instance(ResourceKey(kind: .instance, project: project, name: name)) }
        let previous = status.details["attachedTo"]?.stringValue
        let wanted = spec.attachment?.instance
        if let previous, previous != wanted {
            if let held = state(on: previous) {
                status.phase = "Detaching"
                status.details["attachment"] = .string("detaching from \(previous): \(held)")
                await enqueue(previous)
                return .requeue(status, after: .seconds(2))
            }
            status.details["attachedTo"] = nil
        }
        guard let wanted else {
            status.details["attachment"] = nil
            status.phase = "Available"
            return .done(status)
        }
        // An instance deleted (or being deleted) holds nothing once its domain is gone: as on EC2
        // the volume is then available; a manifest's attachment naming it says so.
        let holder = try? store.get(ResourceKey(kind: .instance, project: project, name: wanted))
        if holder == nil || holder?.isTerminating == true {
            if let held = state(on: wanted), holder != nil {
                status.phase = "Detaching"
                status.details["attachment"] = .string("detaching from \(wanted), which is being deleted: \(held)")
                return .requeue(status, after: .seconds(2))
            }
            status.details["attachedTo"] = nil
            status.details["attachment"] = .string("instance \(wanted) does not exist; remove spec.attachment or create it")
            status.phase = "Available"
            return .requeue(status, after: .seconds(10))
        }
        if status.details["attachedTo"]?.stringValue != wanted {
            status.details["attachedTo"] = .string(wanted)
            await enqueue(wanted)
        }
        let reported = state(on: wanted)
        status.details["attachment"] = .string(reported ?? "attaching: waiting for \(wanted)'s node")
        if reported == "attached" {
            status.phase = "Attached"
            return .done(status)
        }
        status.phase = "Available"
        if reported == nil { await enqueue(wanted) }
        if let reported, reported.hasPrefix("AoEInitiatorUnavailable") {
            status.setCondition(Condition(type: .ready, status: .false, reason: .aoeInitiatorUnavailable, message: reported, lastTransitionTime: now))
        }
        return .requeue(status, after: .seconds(2))
    }

    public func finalize(_ resource: StoredResource) async -> ReconcileResult {
        // A disk a guest still holds is not removed under it: its instance is asked to let go first.
        if let id = resource.metadata.id, let holder = resource.resource.status?.details["attachedTo"]?.stringValue {
            let instance = ResourceKey(kind: .instance, project: resource.key.project, name: holder)
            if let held = (try? store.get(instance))?.resource.status?.details["volumes"]?.objectValue?[id]?.stringValue {
                await enqueue.instance(instance)
                return .failed(reason: .storageError, message: "\(id) is still in \(holder)'s domain (\(held)); it is deleted once the guest releases it", retryable: true)
            }
        }
        if let storage, let id = resource.metadata.id {
            do { try await storage.export.remove(volume: id) } catch {
                return .failed(reason: .storageError, message: "cannot remove the export of \(id): \(error)", retryable: true)
            }
        }
        do { try store.quarantine(pool: Self.aoePool, owner: resource.key) } catch {
            return .failed(reason: .storageError, message: "cannot release the AoE address: \(error)", retryable: true)
        }
        return .done(ResourceStatus())
    }

    /// Backing stores no volume describes (a volume deleted while the server was down).
    public func sweep(_ wanted: [StoredResource]) async -> [String] {
        guard let storage else { return [] }
        let ids = Set(wanted.compactMap(\.metadata.id))
        var removed: [String] = []
        for volume in await storage.export.volumes() where !ids.contains(volume) {
            // `wanted` was read when the resync began: a volume created since is in the store now.
            if (try? store.get(ec2Id: volume)) != nil { continue }
            if (try? await storage.export.remove(volume: volume)) != nil { removed.append(volume) }
        }
        return removed
    }
}

/// Asks the wire whether an AoE target answers, and with what size.
public protocol AoEWireCheck: Sendable {
    var interface: String { get }
    /// IDENTIFY of `e<shelf>.<slot>` after Query Config finds it; nil when it does not answer in
    /// `attempts` tries. Throws when the check cannot ask at all (its interface is gone or down).
    func identify(shelf: UInt16, slot: UInt8, attempts: Int) async throws -> AoE.Identity?
}

/// The wire check on a raw socket: one `AoEClient`, its exchanges one at a time on a thread of its own.
public final class AoESocketCheck: AoEWireCheck {
    public let interface: String
    let client: AoEClient
    let queue = DispatchQueue(label: "stratus.aoe.check")

    public init(interface: String, namespace: String? = nil) throws {
        self.interface = interface
        client = try AoEClient(interface: interface, namespace: namespace)
    }

    public func identify(shelf: UInt16, slot: UInt8, attempts: Int) async throws -> AoE.Identity? {
        // A vblade just started answers within milliseconds; one that is not there must not hold
        // the (serial) client long: short waits first, growing to 200 ms.
        for attempt in 0..<max(1, attempts) {
            let wait = Duration.milliseconds(min(200, 10 << min(attempt, 5)))
            let found: AoE.Identity? = try await withCheckedThrowingContinuation { continuation in
                queue.async { [client] in
                    continuation.resume(with: Result { try client.discover(shelf: shelf, slot: slot, timeout: wait).first?.identity })
                }
            }
            if let found { return found }
            if attempt + 1 < attempts { try? await Task.sleep(for: .milliseconds(20)) }
        }
        return nil
    }
}
