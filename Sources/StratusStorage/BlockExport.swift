import Foundation
import Logging

/// What a storage node should export for one volume.
public struct ExportIntent: Sendable, Equatable {
    /// The volume's EC2 id (`vol-…`): names its backing file and its vblade.
    public var volume: String
    public var bytes: Int64
    public var shelf: UInt16
    public var slot: UInt8

    public init(volume: String, bytes: Int64, shelf: UInt16, slot: UInt8) {
        self.volume = volume
        self.bytes = bytes
        self.shelf = shelf
        self.slot = slot
    }
}

/// What a storage node has for one volume.
public struct ExportReport: Sendable, Equatable {
    /// The backing store (a file under the volume directory).
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
    /// Stops the export and removes the backing store, wiped first.
    func remove(volume: String) async throws
    /// Restarts a volume's export (a target that stopped answering).
    func restart(volume: String) async throws
    /// Stops every export, keeping the backing stores (the server is stopping).
    func stopAll() async
    /// The volumes whose backing stores exist on this node.
    func volumes() async -> [String]
}

/// File-backed volumes exported by vblade: `DIR/<vol-id>.img`, sparse (grown with ftruncate,
/// never shrunk), and one supervised `vblade <shelf> <slot> <interface> <file>` per volume.
///
/// Supervision: a vblade that exits while its volume is wanted is started again (after 1 s,
/// doubling to 30 s while it keeps dying). Each vblade's PID, shelf and slot are kept in
/// `DIR/<vol-id>.pid`, so after the server was killed the next one adopts the vblade still
/// running (same command line, checked in `/proc`) instead of exporting the volume twice, and
/// watches it by polling; on a graceful stop every vblade is stopped with the server.
public actor FileBlockExport: BlockExport {
    public nonisolated let interface: String
    let directory: String
    let vblade: String
    /// A command to run vblade through (tests: `ip netns exec NS`); empty runs it directly.
    let prefix: [String]
    let logger: Logger

    final class Child {
        var intent: ExportIntent
        var process: Process?
        /// The PID of a vblade this server adopted (not its child): watched by polling.
        var adopted: Int32?
        var restarts = 0
        var wanted = true
        var watcher: Task<Void, Never>?

        init(intent: ExportIntent) { self.intent = intent }

        var pid: Int32? { process.map { $0.isRunning ? $0.processIdentifier : nil } ?? adopted }
    }

    var children: [String: Child] = [:]

    public init(directory: String, interface: String, vblade: String = "/usr/sbin/vblade", prefix: [String] = [], logger: Logger = Logger(label: "stratus.storage")) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        guard FileManager.default.isExecutableFile(atPath: vblade) else {
            throw AoEError("vblade is not installed at \(vblade) (Debian package vblade; make install-deps installs it)")
        }
        self.directory = directory
        self.interface = interface
        self.vblade = vblade
        self.prefix = prefix
        self.logger = logger
    }

    func backing(_ volume: String) -> String { "\(directory)/\(volume).img" }
    func pidFile(_ volume: String) -> String { "\(directory)/\(volume).pid" }

    static func validVolume(_ volume: String) -> Bool {
        volume.hasPrefix("vol-") && volume.count <= 32 && volume.dropFirst(4).allSatisfy { $0.isHexDigit }
    }

    public func ensure(_ intent: ExportIntent) async throws -> ExportReport {
        guard Self.validVolume(intent.volume) else { throw AoEError("\(intent.volume) is not a volume id") }
        let path = backing(intent.volume)
        let grown = try Self.sizeBacking(path, to: intent.bytes)
        if let child = children[intent.volume] {
            let moved = child.intent.shelf != intent.shelf || child.intent.slot != intent.slot
            child.intent = intent
            child.wanted = true
            // vblade reads the size and address when it starts.
            if grown || moved || child.pid == nil { try restartChild(child) }
            return report(child)
        }
        let child = Child(intent: intent)
        children[intent.volume] = child
        if !grown, let pid = adoptable(intent) {
            child.adopted = pid
            child.watcher = watch(adopted: pid, volume: intent.volume)
            logger.info("adopted the running export", metadata: ["stratus.volume": "\(intent.volume)", "stratus.pid": "\(pid)"])
        } else {
            if let stale = Self.readPidFile(pidFile(intent.volume)), Self.isVblade(stale.pid, backing: path) { Self.stop(pid: stale.pid) }
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
        if let child = children.removeValue(forKey: volume) {
            child.wanted = false
            child.watcher?.cancel()
            if let pid = child.pid { Self.stop(pid: pid) }
        } else if let stale = Self.readPidFile(pidFile(volume)), Self.isVblade(stale.pid, backing: path) {
            Self.stop(pid: stale.pid)
        }
        unlink(pidFile(volume))
        // Wiped before it goes: no byte of it can turn up in a later volume's blocks.
        if let descriptor = Optional(open(path, O_WRONLY | O_CLOEXEC)), descriptor >= 0 {
            ftruncate(descriptor, 0)
            fsync(descriptor)
            close(descriptor)
        }
        if unlink(path) != 0 && errno != ENOENT { throw AoEError("cannot remove \(path): \(String(cString: strerror(errno)))") }
    }

    public func restart(volume: String) async throws {
        guard let child = children[volume] else { return }
        try restartChild(child)
    }

    public func stopAll() async {
        for child in children.values {
            child.wanted = false
            child.watcher?.cancel()
            if let pid = child.pid { Self.stop(pid: pid) }
            unlink(pidFile(child.intent.volume))
        }
        children.removeAll()
    }

    public func volumes() async -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".img") }.map { String($0.dropLast(4)) }.filter(Self.validVolume).sorted()
    }

    // MARK: - vblade

    func restartChild(_ child: Child) throws {
        child.watcher?.cancel()
        child.watcher = nil
        if let pid = child.pid { Self.stop(pid: pid) }
        child.process = nil
        child.adopted = nil
        try start(child)
    }

    func start(_ child: Child) throws {
        let intent = child.intent
        let process = Process()
        let arguments = ["\(intent.shelf)", "\(intent.slot)", interface, backing(intent.volume)]
        if prefix.isEmpty {
            process.executableURL = URL(fileURLWithPath: vblade)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: prefix[0])
            process.arguments = Array(prefix.dropFirst()) + [vblade] + arguments
        }
        let log = FileHandle(forWritingAtPath: "/dev/null")
        process.standardInput = log
        process.standardOutput = log
        process.standardError = log
        let volume = intent.volume
        process.terminationHandler = { [weak self] ended in
            guard let self else { return }
            Task { await self.exited(volume: volume, process: ended) }
        }
        do { try process.run() } catch { throw AoEError("cannot start vblade for \(volume): \(error)") }
        child.process = process
        try? "\(process.processIdentifier) \(intent.shelf) \(intent.slot) \(interface)\n".write(toFile: pidFile(volume), atomically: true, encoding: .utf8)
        logger.info("exporting over AoE", metadata: ["stratus.volume": "\(volume)", "stratus.aoe": "e\(intent.shelf).\(intent.slot)", "stratus.interface": "\(interface)", "stratus.pid": "\(process.processIdentifier)"])
    }

    /// A vblade ended: start it again if its volume is still wanted and it is still the current one.
    func exited(volume: String, process: Process) async {
        guard let child = children[volume], child.wanted, child.process === process else { return }
        await died(child, status: "exit status \(process.terminationStatus)")
    }

    func died(_ child: Child, status: String) async {
        child.restarts += 1
        let delay = Duration.seconds(min(30, 1 << min(child.restarts - 1, 5)))
        logger.warning("vblade died; starting it again", metadata: ["stratus.volume": "\(child.intent.volume)", "stratus.status": "\(status)", "stratus.restarts": "\(child.restarts)", "stratus.delay": "\(delay)"])
        child.process = nil
        child.adopted = nil
        try? await Task.sleep(for: child.restarts == 1 ? .milliseconds(100) : delay)
        guard child.wanted, children[child.intent.volume] === child, child.pid == nil else { return }
        do { try start(child) } catch { logger.error("cannot restart vblade", metadata: ["stratus.volume": "\(child.intent.volume)", "stratus.error": "\(error)"]) }
    }

    /// Polls an adopted vblade (not this process's child, so no exit status arrives).
    func watch(adopted pid: Int32, volume: String) -> Task<Void, Never> {
        Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if Task.isCancelled { return }
                if kill(pid, 0) != 0 && errno == ESRCH {
                    guard let self else { return }
                    await self.adoptedEnded(volume: volume, pid: pid)
                    return
                }
            }
        }
    }

    func adoptedEnded(volume: String, pid: Int32) async {
        guard let child = children[volume], child.wanted, child.adopted == pid else { return }
        await died(child, status: "adopted PID \(pid) ended")
    }

    /// The PID of a vblade still exporting exactly this intent (from its PID file and `/proc`).
    func adoptable(_ intent: ExportIntent) -> Int32? {
        guard let recorded = Self.readPidFile(pidFile(intent.volume)), recorded.shelf == intent.shelf, recorded.slot == intent.slot,
            recorded.interface == interface, Self.isVblade(recorded.pid, backing: backing(intent.volume))
        else { return nil }
        return recorded.pid
    }

    static func readPidFile(_ path: String) -> (pid: Int32, shelf: UInt16, slot: UInt8, interface: String)? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let fields = text.split(whereSeparator: \.isWhitespace)
        guard fields.count == 4, let pid = Int32(fields[0]), let shelf = UInt16(fields[1]), let slot = UInt8(fields[2]) else { return nil }
        return (pid, shelf, slot, String(fields[3]))
    }

    /// Whether `pid` is a vblade exporting `backing` (its command line's last argument).
    static func isVblade(_ pid: Int32, backing: String) -> Bool {
        guard pid > 0, let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        return arguments.first.map { $0.hasSuffix("vblade") } == true && arguments.last == backing
    }

    /// SIGTERM, then SIGKILL if it is still there after 2 s.
    static func stop(pid: Int32) {
        guard pid > 0, kill(pid, SIGTERM) == 0 else { return }
        for _ in 0..<200 {
            if kill(pid, 0) != 0 { return }
            // A child of ours lingers as a zombie until reaped; Process reaps it, so look at /proc's state.
            if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), stat.contains(") Z ") { return }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
    }

    /// Creates the backing file or grows it (sparse) to `bytes`; true when its size changed.
    static func sizeBacking(_ path: String, to bytes: Int64) throws -> Bool {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw AoEError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw AoEError("cannot stat \(path): \(String(cString: strerror(errno)))") }
        if info.st_size == bytes { return false }
        guard info.st_size < bytes else { throw AoEError("\(path) holds \(info.st_size) bytes, more than the volume's \(bytes): volumes only grow") }
        guard ftruncate(descriptor, off_t(bytes)) == 0 else { throw AoEError("cannot size \(path) to \(bytes) bytes: \(String(cString: strerror(errno)))") }
        return info.st_size != 0
    }
}
