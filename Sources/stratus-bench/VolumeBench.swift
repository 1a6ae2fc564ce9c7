import Crypto
import Foundation
import Logging
import StratusIdentity
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
        let report = """
            | measurement (\(count) volumes of 1 GiB, sparse files, vblade in a namespace) | result |
            |---|---|
            | by hand: \(count) files + \(count) vblades started in a loop, until one Query Config hears all (\(heard) heard) | \(String(format: "%.2f", handSeconds)) s (\(String(format: "%.1f", 1000 * handSeconds / Double(count))) ms per volume) |
            | Stratus: FileBlockExport.ensure + AoESocketCheck.identify (16 at once), until each answers with its size (\(answered) answered) | \(String(format: "%.2f", seconds)) s (\(String(format: "%.1f", 1000 * seconds / Double(count))) ms per volume) |
            | ratio Stratus / by hand | \(String(format: "%.2f", seconds / handSeconds))× |
            """
        FileHandle.standardOutput.write(Data((report + "\n").utf8))
        if answered < count || heard < count { throw AoEError("only \(answered) of \(count) exports answered (\(heard) by hand)") }
    }
}

/// `stratus-bench aoe-read [MiB] [MTU]` (root): sequential read of a volume of MiB (default 256)
/// through AoE, vblade in one namespace and the reader in another, joined by veth of MTU (default
/// 9000; vblade then carries 17 sectors a frame, at 1500 it carries 2). In the same run: the
/// Swift client (`AoEClient.readSequential`, 16 requests in flight), the Python raw-socket reader
/// `bench/aoe_read.py` (the same algorithm), and `dd` of the backing file from the page cache (the
/// ceiling). Each reader's data is checked against the file's SHA-256. Target: the Swift client
/// within 1.5× of the best reader (it must not take more than 1.5× its time).
enum AoEReadBench {
    static func run(mebibytes: Int, mtu: Int) async throws {
        guard getuid() == 0 else { throw AoEError("the AoE read benchmark needs root (network namespaces, vblade, raw sockets)") }
        let tag = UUID().uuidString.prefix(6).lowercased()
        let (san, ini) = ("stratus-rsan-\(tag)", "stratus-rini-\(tag)")
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-aoeread-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        for command in [["netns", "add", san], ["netns", "add", ini], ["link", "add", "rv-\(tag)", "mtu", "\(mtu)", "type", "veth", "peer", "name", "ri-\(tag)", "mtu", "\(mtu)"],
                        ["link", "set", "rv-\(tag)", "netns", san], ["link", "set", "ri-\(tag)", "netns", ini],
                        ["-n", san, "link", "set", "rv-\(tag)", "up"], ["-n", ini, "link", "set", "ri-\(tag)", "up"]] {
            let result = try ChildProcess.run("/usr/sbin/ip", command)
            guard result.status == 0 else { throw AoEError("ip \(command.joined(separator: " ")): \(result.errors)") }
        }
        let backing = "\(root)/volume.img"
        var vblade: pid_t = 0
        defer {
            if vblade > 0 { kill(vblade, SIGKILL); var status: Int32 = 0; waitpid(vblade, &status, 0) }
            _ = try? ChildProcess.run("/usr/sbin/ip", ["netns", "del", san])
            _ = try? ChildProcess.run("/usr/sbin/ip", ["netns", "del", ini])
            try? FileManager.default.removeItem(atPath: root)
        }
        // Random bytes, so a reader that returned zeros or stale sectors would not match.
        _ = try ChildProcess.run("/usr/bin/dd", ["if=/dev/urandom", "of=\(backing)", "bs=1M", "count=\(mebibytes)", "status=none"])
        let expected = try ChildProcess.run("/usr/bin/sha256sum", [backing]).output.split(separator: " ").first.map(String.init) ?? ""
        vblade = try ChildProcess.spawn("/usr/sbin/ip", ["netns", "exec", san, "/usr/sbin/vblade", "3", "4", "rv-\(tag)", backing])
        let client = try AoEClient(interface: "ri-\(tag)", namespace: ini)
        var target: AoETarget?
        for _ in 0..<100 where target == nil {
            target = try client.discover(shelf: 3, slot: 4, timeout: .milliseconds(100)).first
        }
        guard let target else { throw AoEError("vblade did not answer Query Config") }
        let sectors = UInt64(mebibytes) << 11

        // dd of the file: the page cache's rate (the file was just written).
        let ddStart = ContinuousClock.now
        _ = try ChildProcess.run("/usr/bin/dd", ["if=\(backing)", "of=/dev/null", "bs=1M", "status=none"])
        let ddSeconds = (ContinuousClock.now - ddStart).seconds

        // The Swift client, into one buffer in LBA order.
        var data = [UInt8](repeating: 0, count: Int(sectors) * AoE.sectorSize)
        let swiftStart = ContinuousClock.now
        try data.withUnsafeMutableBytes { buffer in
            try client.readSequential(target, sectors: sectors, window: 16) { lba, bytes in
                let offset = Int(lba) * AoE.sectorSize
                bytes.withUnsafeBytes { buffer.baseAddress!.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            }
        }
        let swiftSeconds = (ContinuousClock.now - swiftStart).seconds
        let swiftDigest = SHA256Hex.of(data)

        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("bench/aoe_read.py").path
        let python = try ChildProcess.run("/usr/sbin/ip", ["netns", "exec", ini, "python3", script, "ri-\(tag)", "3", "4", "\(sectors)", "\(target.maxSectors)", "16", target.mac])
        let peer = (try? JSONSerialization.jsonObject(with: Data(python.output.utf8))) as? [String: Any] ?? [:]
        let pythonSeconds = peer["seconds"] as? Double ?? .infinity
        let best = min(pythonSeconds, swiftSeconds)
        let bytes = Double(sectors) * 512
        func rate(_ seconds: Double) -> String { String(format: "%.0f MB/s (%.2f s)", bytes / seconds / 1e6, seconds) }
        let report = """
            | sequential read of a \(mebibytes) MiB volume over AoE (veth MTU \(mtu), \(target.maxSectors) sectors a frame, 16 in flight) | result |
            |---|---|
            | Swift client (AoEClient.readSequential)\(swiftDigest == expected ? "" : " — DATA MISMATCH") | \(rate(swiftSeconds)) |
            | Python raw-socket reader (bench/aoe_read.py)\((peer["sha256"] as? String) == expected ? "" : " — DATA MISMATCH or failed: \(python.errors.prefix(200))") | \(rate(pythonSeconds)) |
            | dd of the backing file (page cache; the ceiling) | \(rate(ddSeconds)) |
            | Swift time / best reader's time (target ≤ 1.5) | \(String(format: "%.2f", swiftSeconds / best)) — \(swiftSeconds / best <= 1.5 ? "PASS" : "FAIL") |
            """
        FileHandle.standardOutput.write(Data((report + "\n").utf8))
        if swiftDigest != expected { throw AoEError("the Swift client's data does not match the file") }
    }
}

enum SHA256Hex {
    static func of(_ bytes: [UInt8]) -> String {
        AWSEncoding.hex(Crypto.SHA256.hash(data: bytes))
    }
}
