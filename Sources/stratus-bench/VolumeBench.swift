import Foundation
import Logging
import StratusCompute
import StratusControl
import StratusStorage

/// `stratus-bench volumes [N]` (root): in a network namespace holding a bridge of the storage
/// segment with a veth port for vblade and one for the wire check, N volumes of 1 GiB are
/// created and exported through `FileBlockExport` and checked with `AoESocketCheck` (what the
/// volume reconciler does for each, 16 at once as its concurrency allows) until every one
/// answers IDENTIFY with its size. The reference in the same run: the same N sparse files and
/// vblades started by hand in a loop, until one broadcast Query Config hears all N.
enum VolumeBench {
    static func run(volumes count: Int) async throws {
        guard getuid() == 0 else { throw AoEError("the volume benchmark needs root (network namespaces, vblade, raw sockets)") }
        let namespace = "stratus-vbench-\(UUID().uuidString.prefix(6).lowercased())"
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-vbench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        var commands: [[String]] = [["netns", "add", namespace], ["-n", namespace, "link", "add", "br-aoe", "type", "bridge"]]
        for port in ["aoe-export", "aoe-check"] {
            commands += [["-n", namespace, "link", "add", port, "type", "veth", "peer", "name", "\(port)-p"], ["-n", namespace, "link", "set", "\(port)-p", "master", "br-aoe"],
                         ["-n", namespace, "link", "set", port, "up"], ["-n", namespace, "link", "set", "\(port)-p", "up"]]
        }
        commands.append(["-n", namespace, "link", "set", "br-aoe", "up"])
        for command in commands { _ = try ChildProcess.run("/usr/sbin/ip", command) }
        defer {
            _ = try? ChildProcess.run("/usr/sbin/ip", ["netns", "del", namespace])
            try? FileManager.default.removeItem(atPath: root)
        }
        let prefix = ["/usr/sbin/ip", "netns", "exec", namespace]
        let check = try AoESocketCheck(interface: "aoe-check", namespace: namespace)

        // The reference: files and vblades by hand, then one broadcast until all answer.
        let manual = "\(root)/manual"
        try FileManager.default.createDirectory(atPath: manual, withIntermediateDirectories: true)
        var processes: [pid_t] = []
        let handStarted = ContinuousClock.now
        for index in 0..<count {
            let path = "\(manual)/\(index).img"
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            truncate(path, off_t(1 << 30))
            processes.append(try ChildProcess.spawn(prefix[0], Array(prefix.dropFirst()) + ["/usr/sbin/vblade", "2", "\(index)", "aoe-export", path]))
        }
        let client = try AoEClient(interface: "aoe-check", namespace: namespace)
        var heard = 0
        while heard < count, ContinuousClock.now - handStarted < .seconds(120) {
            heard = try client.discover(shelf: 2, slot: AoE.everySlot, timeout: .milliseconds(20)).count
        }
        let handSeconds = (ContinuousClock.now - handStarted).seconds
        for pid in processes { kill(pid, SIGTERM) }
        for pid in processes { var status: Int32 = 0; waitpid(pid, &status, 0) }

        // Stratus's drivers, as the reconciler calls them.
        var logger = Logger(label: "stratus.storage")
        logger.logLevel = .warning
        let export = try FileBlockExport(directory: "\(root)/volumes", interface: "aoe-export", prefix: prefix, logger: logger)
        let started = ContinuousClock.now
        let answered = try await withThrowingTaskGroup(of: Bool.self) { group in
            var next = 0
            var answered = 0
            func add() {
                let index = next
                next += 1
                group.addTask {
                    let volume = String(format: "vol-%08x", index + 1)
                    _ = try await export.ensure(ExportIntent(volume: volume, bytes: 1 << 30, shelf: 1, slot: UInt8(index)))
                    return try await check.identify(shelf: 1, slot: UInt8(index), attempts: 20)?.sectors == 2_097_152
                }
            }
            for _ in 0..<min(16, count) { add() }
            while let ok = try await group.next() {
                if ok { answered += 1 }
                if next < count { add() }
            }
            return answered
        }
        let seconds = (ContinuousClock.now - started).seconds
        await export.stopAll()
        print("""
            | measurement (\(count) volumes of 1 GiB, sparse files, vblade in a namespace) | result |
            |---|---|
            | by hand: \(count) files + \(count) vblades started in a loop, until one Query Config hears all (\(heard) heard) | \(String(format: "%.2f", handSeconds)) s (\(String(format: "%.1f", 1000 * handSeconds / Double(count))) ms per volume) |
            | Stratus: FileBlockExport.ensure + AoESocketCheck.identify (16 at once), until each answers with its size (\(answered) answered) | \(String(format: "%.2f", seconds)) s (\(String(format: "%.1f", 1000 * seconds / Double(count))) ms per volume) |
            | ratio Stratus / by hand | \(String(format: "%.2f", seconds / handSeconds))× |
            """)
        if answered < count || heard < count { throw AoEError("only \(answered) of \(count) exports answered (\(heard) by hand)") }
    }
}
