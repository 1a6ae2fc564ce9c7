import Foundation
import Logging
import StratusCompute

/// What a storage node should export for one volume.
public struct ExportIntent: Sendable, Equatable {
    /// The volume's EC2 id (`vol-…`): names its backing file and its vblade.
    public var volume: String
    public var bytes: Int64
    public var shelf: UInt16
    public var slot: UInt8
    /// A snapshot's file the volume starts from, when its backing store does not exist yet.
    public var source: String?

    public init(volume: String, bytes: Int64, shelf: UInt16, slot: UInt8, source: String? = nil) {
        self.volume = volume
        self.bytes = bytes
        self.shelf = shelf
        self.slot = slot
        self.source = source
    }
}

/// What a storage node has for one volume.
public struct ExportReport: Sendable, Equatable {
    /// The backing store (a file under the volume directory, or a logical volume's device).
    public var backing: String
    public var bytes: Int64
    /// vblade's process, while it runs.
    public var pid: Int32?
    /// How many times vblade was started again after it died.
    public var restarts: Int
}

/// Block storage on a storage node: a backing store per volume, exported over AoE.
public protocol BlockExport: Sendable {
    /// The interface the exports are on (where the wire check listens).
    var interface: String { get }
    /// Creates (or grows) the backing store and makes sure its export runs.
    func ensure(_ intent: ExportIntent) async throws -> ExportReport
    /// Stops the export and removes the backing store (its blocks freed; a new volume's file reads
    /// zeros, as the filesystem gives new blocks).
    func remove(volume: String) async throws
    /// Restarts a volume's export (a target that stopped answering).
    func restart(volume: String) async throws
    /// Stops every export, keeping the backing stores (the server is stopping).
    func stopAll() async
    /// The volumes whose backing stores exist on this node.
    func volumes() async -> [String]
    /// Copies a volume's blocks as they are now into snapshot `id` (a reflink where the filesystem
    /// allows); returns the snapshot's file and how it was copied (`reflink` or `copy`).
    func snapshot(volume: String, id: String) async throws -> (path: String, copy: String)
    /// Removes a snapshot's file.
    func removeSnapshot(id: String) async throws
    /// The snapshots whose files exist on this node (and removes copies a crash left half-made).
    func snapshots() async -> [String]
}

/// Volumes exported by vblade: one supervised `vblade <shelf> <slot> <interface> <backing>` per
/// volume, the backing store a `VolumeBacking` — sparse files `DIR/<vol-id>.img` (grown with
/// ftruncate, never shrunk) by default, or an LVM volume group's logical volumes.
///
/// Supervision: vblade is spawned in a session of its own with a clean signal mask
/// (`ChildProcess.spawn`, its output in `DIR/<vol-id>.log`), and one loop looks at every export
/// four times a second: a vblade that ended while its volume is wanted is started again (after
/// 0.1 s the first time, then 1, 2, 4 … 30 s while it keeps dying; a minute up starts that over).
/// Each vblade's PID, shelf, slot and interface are kept in `DIR/<vol-id>.pid`, so after the
/// server was killed the next one adopts the vblade still running (the same shelf, slot,
/// interface and file on its command line in `/proc`) instead of exporting the volume twice, and
/// watches it with `kill(pid, 0)`, as it is not its child; on a graceful stop every vblade is
/// stopped with the server.
public actor FileBlockExport: BlockExport {
    public nonisolated let interface: String
    /// Where the volumes' blocks are.
    public nonisolated let store: any VolumeBacking
    /// Where PID files, vblade logs and snapshots are kept.
    let directory: String
    let vblade: String
    /// A command to run vblade through (tests: `ip netns exec NS`); empty runs it directly.
    let prefix: [String]
    let logger: Logger

    final class Child {
        var intent: ExportIntent
        var pid: Int32?
        /// Whether `pid` is this process's child (reaped with waitpid) or adopted (polled).
        var spawned = false
        var restarts = 0
        var notBefore = ContinuousClock.now
        var startedAt = ContinuousClock.now

        init(intent: ExportIntent) { self.intent = intent }
    }

    var children: [String: Child] = [:]
    var supervisor: Task<Void, Never>?

    public init(directory: String, interface: String, backing: (any VolumeBacking)? = nil, vblade: String = "/usr/sbin/vblade", prefix: [String] = [], logger: Logger = Logger(label: "stratus.storage")) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        guard FileManager.default.isExecutableFile(atPath: vblade) else {
            throw AoEError("vblade is not installed at \(vblade) (Debian package vblade; make install-deps installs it)")
        }
        self.directory = directory
        self.store = backing ?? FileBacking(directory: directory)
        self.interface = interface
        self.vblade = vblade
        self.prefix = prefix
        self.logger = logger
    }

    func backing(_ volume: String) -> String { store.path(volume) }
    func pidFile(_ volume: String) -> String { "\(directory)/\(volume).pid" }
    /// vblade's own output (why it exited, when it does).
    func logFile(_ volume: String) -> String { "\(directory)/\(volume).log" }

    static func validVolume(_ volume: String) -> Bool { FileBacking.validVolume(volume) }

    public func ensure(_ intent: ExportIntent) async throws -> ExportReport {
        guard Self.validVolume(intent.volume) else { throw AoEError("\(intent.volume) is not a volume id") }
        if supervisor == nil { supervisor = Self.supervisorTask(self) }
        let path = backing(intent.volume)
        let grown = try store.ensure(intent.volume, bytes: intent.bytes, source: intent.source)
        if let child = children[intent.volume] {
            let moved = child.intent.shelf != intent.shelf || child.intent.slot != intent.slot
            child.intent = intent
            // vblade reads the size and address when it starts.
            // A vblade that died waits out its backoff (the supervisor starts it), unless the volume changed.
            if grown || moved { try restartChild(child) } else if child.pid == nil, ContinuousClock.now >= child.notBefore { try start(child) }
            return report(child)
        }
        let child = Child(intent: intent)
        children[intent.volume] = child
        if !grown, let pid = adoptable(intent) {
            child.pid = pid
            logger.info("adopted the running export", metadata: ["stratus.volume": "\(intent.volume)", "stratus.pid": "\(pid)"])
        } else {
            if let stale = Self.readPidFile(pidFile(intent.volume)), Self.isVblade(stale.pid, backing: path), !Self.stop(pid: stale.pid, spawned: false) {
                throw AoEError("a vblade (PID \(stale.pid)) still exports \(path) and does not stop")
            }
            try start(child)
        }
        return report(child)
    }

    func report(_ child: Child) -> ExportReport {
        ExportReport(backing: backing(child.intent.volume), bytes: child.intent.bytes, pid: child.pid, restarts: child.restarts)
    }

    public func remove(volume: String) async throws {
        guard Self.validVolume(volume) else { throw AoEError("\(volume) is not a volume id") }
        let path = backing(volume)
        var stopped = true
        if let child = children[volume] {
            if let pid = child.pid { stopped = Self.stop(pid: pid, spawned: child.spawned) }
        } else if let stale = Self.readPidFile(pidFile(volume)), Self.isVblade(stale.pid, backing: path) {
            stopped = Self.stop(pid: stale.pid, spawned: false)
        }
        // A file still exported stays: removing it under a running vblade would serve a deleted file.
        guard stopped else { throw AoEError("the vblade exporting \(path) does not stop; the volume is kept until it does") }
        children[volume] = nil
        unlink(pidFile(volume))
        unlink(logFile(volume))
        // Its blocks are wiped or freed, never handed to a later volume with this one's data.
        try store.remove(volume)
    }

    public func restart(volume: String) async throws {
        guard let child = children[volume] else { return }
        try restartChild(child)
    }

    public func stopAll() async {
        supervisor?.cancel()
        supervisor = nil
        for child in children.values {
            if let pid = child.pid { Self.stop(pid: pid, spawned: child.spawned) }
            unlink(pidFile(child.intent.volume))
        }
        children.removeAll()
    }

    public func volumes() async -> [String] { (try? store.volumes()) ?? [] }

    // MARK: - Snapshots

    func snapshotFile(_ id: String) -> String { "\(directory)/snapshots/\(id).img" }

    public func snapshot(volume: String, id: String) async throws -> (path: String, copy: String) {
        guard Self.validVolume(volume), id.hasPrefix("snap-"), id.count <= 32, id.dropFirst(5).allSatisfy(\.isHexDigit) else {
            throw AoEError("\(volume) or \(id) is not an id")
        }
        let path = snapshotFile(id)
        try FileManager.default.createDirectory(atPath: "\(directory)/snapshots", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        if FileManager.default.fileExists(atPath: path) { return (path, "existing") }
        // Written under a temporary name and renamed: a half-made snapshot never looks complete.
        let partial = path + ".partial"
        unlink(partial)
        let how = try store.copy(volume, to: partial)
        guard rename(partial, path) == 0 else { throw AoEError("cannot move \(partial) into place: \(String(cString: strerror(errno)))") }
        return (path, how)
    }

    public func snapshots() async -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(directory)/snapshots")) ?? []
        // A `.partial` is a copy that never finished: nothing names it, and it is taken again.
        for name in names where name.hasSuffix(".img.partial") && Self.validSnapshot(String(name.dropLast(".img.partial".count))) {
            unlink("\(directory)/snapshots/\(name)")
        }
        return names.filter { $0.hasSuffix(".img") }.map { String($0.dropLast(4)) }.filter(Self.validSnapshot).sorted()
    }

    static func validSnapshot(_ id: String) -> Bool { id.hasPrefix("snap-") && id.count <= 32 && id.dropFirst(5).allSatisfy(\.isHexDigit) }

    public func removeSnapshot(id: String) async throws {
        guard id.hasPrefix("snap-"), id.dropFirst(5).allSatisfy(\.isHexDigit) else { throw AoEError("\(id) is not a snapshot id") }
        if unlink(snapshotFile(id)) != 0 && errno != ENOENT { throw AoEError("cannot remove \(snapshotFile(id)): \(String(cString: strerror(errno)))") }
    }

    // MARK: - vblade

    func restartChild(_ child: Child) throws {
        if let pid = child.pid { Self.stop(pid: pid, spawned: child.spawned) }
        child.pid = nil
        try start(child)
    }

    func start(_ child: Child) throws {
        let intent = child.intent
        let arguments = ["\(intent.shelf)", "\(intent.slot)", interface, backing(intent.volume)]
        let (tool, all) = prefix.isEmpty ? (vblade, arguments) : (prefix[0], Array(prefix.dropFirst()) + [vblade] + arguments)
        let pid: pid_t
        do { pid = try ChildProcess.spawn(tool, all, log: logFile(intent.volume)) } catch { throw AoEError("cannot start vblade for \(intent.volume): \(error)") }
        child.pid = pid
        child.spawned = true
        child.startedAt = .now
        do {
            try "\(pid) \(intent.shelf) \(intent.slot) \(interface)\n".write(toFile: pidFile(intent.volume), atomically: true, encoding: .utf8)
        } catch {
            // Without it a server started after a crash cannot adopt this vblade and would export the volume twice.
            logger.error("cannot record the export's PID", metadata: ["stratus.volume": "\(intent.volume)", "stratus.error": "\(error)"])
        }
        logger.info("exporting over AoE", metadata: ["stratus.volume": "\(intent.volume)", "stratus.aoe": "e\(intent.shelf).\(intent.slot)", "stratus.interface": "\(interface)", "stratus.pid": "\(pid)"])
    }

    /// The supervisor's loop, holding the export only while it looks (so a dropped export ends it).
    static func supervisorTask(_ export: FileBlockExport) -> Task<Void, Never> {
        Task { [weak export] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(250))
                guard let current = export, !Task.isCancelled else { return }
                await current.supervise()
            }
        }
    }

    /// Reaps or polls every export, and starts again the ones that ended once their backoff passed.
    func supervise() {
        let now = ContinuousClock.now
        for child in children.values {
            if let pid = child.pid {
                // A vblade that stayed up a minute starts its backoff over when it next dies.
                if child.restarts > 0, now - child.startedAt > .seconds(60) { child.restarts = 0 }
                let ended: String?
                if child.spawned {
                    ended = ChildProcess.exitStatus(pid).map { "exit status \($0)" }
                } else {
                    ended = kill(pid, 0) != 0 && errno == ESRCH ? "adopted PID \(pid) ended" : nil
                }
                guard let ended else { continue }
                child.pid = nil
                child.restarts += 1
                let delay: Duration = child.restarts == 1 ? .milliseconds(100) : .seconds(min(30, 1 << min(child.restarts - 2, 5)))
                child.notBefore = now + delay
                logger.warning("vblade ended; starting it again", metadata: ["stratus.volume": "\(child.intent.volume)", "stratus.status": "\(ended)", "stratus.restarts": "\(child.restarts)", "stratus.delay": "\(delay)"])
            } else if now >= child.notBefore {
                do { try start(child) } catch {
                    child.notBefore = now + .seconds(5)
                    logger.error("cannot restart vblade", metadata: ["stratus.volume": "\(child.intent.volume)", "stratus.error": "\(error)"])
                }
            }
        }
    }

    /// The PID of a vblade still exporting exactly this intent (from its PID file and `/proc`).
    func adoptable(_ intent: ExportIntent) -> Int32? {
        guard let recorded = Self.readPidFile(pidFile(intent.volume)), recorded.shelf == intent.shelf, recorded.slot == intent.slot,
            recorded.interface == interface,
            Self.isVblade(recorded.pid, backing: backing(intent.volume), arguments: ["\(intent.shelf)", "\(intent.slot)", interface])
        else { return nil }
        return recorded.pid
    }

    static func readPidFile(_ path: String) -> (pid: Int32, shelf: UInt16, slot: UInt8, interface: String)? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let fields = text.split(whereSeparator: \.isWhitespace)
        guard fields.count == 4, let pid = Int32(fields[0]), let shelf = UInt16(fields[1]), let slot = UInt8(fields[2]) else { return nil }
        return (pid, shelf, slot, String(fields[3]))
    }

    /// Whether `pid` is a live vblade exporting `backing` (its command line's last argument),
    /// with `arguments` (shelf, slot, interface) just before it when given.
    static func isVblade(_ pid: Int32, backing: String, arguments expected: [String] = []) -> Bool {
        guard pid > 0, let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        guard arguments.first.map({ $0.hasSuffix("vblade") }) == true, arguments.last == backing else { return false }
        return expected.isEmpty || Array(arguments.dropLast().suffix(expected.count)) == expected
    }

    /// SIGTERM, then SIGKILL if it is still there after 2 s; a child of ours is reaped. Whether it is gone.
    /// (Blocking, briefly: vblade ends within milliseconds of SIGTERM.)
    @discardableResult
    static func stop(pid: Int32, spawned: Bool) -> Bool {
        func gone() -> Bool { spawned ? ChildProcess.exitStatus(pid) != nil : (kill(pid, 0) != 0 && errno == ESRCH) }
        guard pid > 0 else { return true }
        if kill(pid, SIGTERM) != 0 { return errno == ESRCH || gone() }
        for _ in 0..<200 {
            if gone() { return true }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        for _ in 0..<200 {
            if gone() { return true }
            usleep(10_000)
        }
        return false
    }
}
