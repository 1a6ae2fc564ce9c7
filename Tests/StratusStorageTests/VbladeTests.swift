import Foundation
import StratusTestSupport
import Testing

@testable import StratusStorage

/// Real vblade in a network namespace (`san`), the Swift AoE client in another (`ini`), joined
/// by a veth pair: the host kernel has no AoE initiator, so the client is the initiator.
@Suite(.serialized) struct VbladeTests {
    /// Runs a command to its end; its status and output.
    static func run(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await offPool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: arguments[0])
            process.arguments = Array(arguments.dropFirst())
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
            let data = pipe.fileHandleForReading.readToEndRetrying()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }
    }

    /// Two namespaces joined by veth (`eth0` in each), up; nil (and the reason) when this machine cannot.
    static func pair() async throws -> (san: String, ini: String)? {
        guard getuid() == 0 else {
            Issue.record("skipped: network namespaces and raw sockets need root; this test runs as uid \(getuid())")
            return nil
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/vblade") else {
            Issue.record("skipped: vblade is not installed (make install-deps installs it)")
            return nil
        }
        let tag = UUID().uuidString.prefix(6).lowercased()
        let (san, ini) = ("stratus-san-\(tag)", "stratus-ini-\(tag)")
        for command in [
            ["netns", "add", san], ["netns", "add", ini], ["link", "add", "sv-\(tag)", "type", "veth", "peer", "name", "iv-\(tag)"],
            ["link", "set", "sv-\(tag)", "netns", san], ["link", "set", "iv-\(tag)", "netns", ini],
            ["-n", san, "link", "set", "sv-\(tag)", "name", "eth0"], ["-n", ini, "link", "set", "iv-\(tag)", "name", "eth0"],
            ["-n", san, "link", "set", "eth0", "up"], ["-n", ini, "link", "set", "eth0", "up"],
        ] {
            let result = try await run(["/usr/sbin/ip"] + command)
            #expect(result.status == 0, "ip \(command.joined(separator: " ")): \(result.output)")
        }
        return (san, ini)
    }

    static func remove(_ namespaces: (san: String, ini: String)) async {
        _ = try? await run(["/usr/sbin/ip", "netns", "del", namespaces.san])
        _ = try? await run(["/usr/sbin/ip", "netns", "del", namespaces.ini])
    }

    /// Processes whose command line is vblade exporting `backing`.
    static func vblades(exporting backing: String) -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
            guard let pid = Int32(entry) else { return nil }
            return FileBlockExport.isVblade(pid, backing: backing) ? pid : nil
        }
    }

    /// Discovers until `condition` holds or 20 s pass (a vblade just started needs a moment).
    static func discover(_ client: AoEClient, until condition: ([AoETarget]) -> Bool) async throws -> [AoETarget] {
        let deadline = ContinuousClock.now + .seconds(20)
        var found: [AoETarget] = []
        while ContinuousClock.now < deadline {
            found = try await offPool { try client.discover(timeout: .milliseconds(300)) }
            if condition(found) { return found }
            try await Task.sleep(for: .milliseconds(100))
        }
        return found
    }

    @Test("an export answers Query Config and IDENTIFY with its size and READ EXT with its bytes; killed, it is restarted; a new server adopts it; removed, it is gone with its file")
    func exportOnTheWire() async throws {
        guard let namespaces = try await Self.pair() else { return }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-volumes-\(UUID().uuidString)").path
        var started: [Int32] = []
        defer {
            for pid in started where kill(pid, 0) == 0 { kill(pid, SIGKILL) }
            try? FileManager.default.removeItem(atPath: directory)
        }
        let prefix = ["/usr/sbin/ip", "netns", "exec", namespaces.san]
        let export = try FileBlockExport(directory: directory, interface: "eth0", prefix: prefix)
        let volume = "vol-0000abcd"
        let backing = "\(directory)/\(volume).img"
        do {
            let report = try await export.ensure(ExportIntent(volume: volume, bytes: 64 << 20, shelf: 1, slot: 2))
            let first = try #require(report.pid, "vblade runs: \(report)")
            started.append(first)
            // `ip netns exec` becomes vblade once it has entered the namespace.
            let exec = ContinuousClock.now + .seconds(20)
            while Self.vblades(exporting: backing) != [first], ContinuousClock.now < exec { try await Task.sleep(for: .milliseconds(50)) }
            #expect(Self.vblades(exporting: backing) == [first], "the PID reported is the vblade exporting the file")
            #expect(report.backing == backing)
            let info = try FileManager.default.attributesOfItem(atPath: backing)
            #expect((info[.size] as? Int) == 64 << 20, "the backing file has the volume's size")

            let client = try AoEClient(interface: "eth0", namespace: namespaces.ini)
            let found = try await Self.discover(client) { $0.contains { $0.address == "e1.2" && $0.identity != nil } }
            let target = try #require(found.first { $0.address == "e1.2" }, "e1.2 answers Query Config: \(found)")
            #expect(target.identity?.sectors == 131_072, "IDENTIFY reports 64 MiB in 512-byte sectors: \(String(describing: target.identity))")
            #expect(target.identity?.model.contains("vblade") == true, "\(String(describing: target.identity))")
            #expect(target.maxSectors >= 1)

            let marker = Array("stratus-aoe-marker".utf8)
            let handle = try #require(FileHandle(forWritingAtPath: backing))
            try handle.write(contentsOf: Data(marker))
            try handle.close()
            let sector = try await offPool { try client.read(target, lba: 0, count: 1) }
            #expect(Array(sector.prefix(marker.count)) == marker, "READ EXT of LBA 0 returns what the backing file holds")

            // A pipelined sequential read of the first MiB returns the file's bytes in order.
            var pattern = [UInt8](repeating: 0, count: 1 << 20)
            for index in pattern.indices { pattern[index] = UInt8(truncatingIfNeeded: index &* 2_654_435_761 >> 13) }
            let writer = try #require(FileHandle(forWritingAtPath: backing))
            try writer.write(contentsOf: Data(pattern))
            try writer.close()
            let read = try await offPool { () -> [UInt8] in
                var data = [UInt8](repeating: 0xEE, count: 1 << 20)
                try client.readSequential(target, sectors: 2048, window: 8) { lba, bytes in
                    data.replaceSubrange(Int(lba) * 512..<(Int(lba) * 512 + bytes.count), with: bytes)
                }
                return data
            }
            #expect(read == pattern, "readSequential returns the first MiB as the file holds it")

            // Killed by PID: the supervisor starts it again, and it answers again.
            kill(first, SIGKILL)
            var second: Int32?
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                let now = Self.vblades(exporting: backing)
                if let pid = now.first, pid != first { second = pid; break }
                try await Task.sleep(for: .milliseconds(100))
            }
            let restarted = try #require(second, "vblade was started again after it was killed")
            started.append(restarted)
            let again = try await Self.discover(client) { $0.contains { $0.address == "e1.2" } }
            #expect(again.contains { $0.address == "e1.2" }, "and answers again: \(again)")
            let restarts = try await export.ensure(ExportIntent(volume: volume, bytes: 64 << 20, shelf: 1, slot: 2)).restarts
            #expect(restarts == 1)

            // A server killed and started again finds the running vblade and adopts it.
            let next = try FileBlockExport(directory: directory, interface: "eth0", prefix: prefix)
            let adopted = try await next.ensure(ExportIntent(volume: volume, bytes: 64 << 20, shelf: 1, slot: 2))
            #expect(adopted.pid == restarted, "the new server adopted PID \(restarted), not a second export: \(adopted)")
            #expect(Self.vblades(exporting: backing) == [restarted], "one vblade exports the volume")
            // The first server's supervisor must not fight over it: it stops watching.
            await export.stopAll()
            #expect(Self.vblades(exporting: backing).isEmpty, "stopAll stops the export")
            let resumed = try await next.ensure(ExportIntent(volume: volume, bytes: 64 << 20, shelf: 1, slot: 2))
            let third = try #require(resumed.pid)
            started.append(third)

            try await next.remove(volume: volume)
            #expect(Self.vblades(exporting: backing).isEmpty, "removing the volume stops its vblade")
            #expect(!FileManager.default.fileExists(atPath: backing), "and removes its file")
            let gone = try await offPool { try client.discover(timeout: .milliseconds(500)) }
            #expect(!gone.contains { $0.address == "e1.2" }, "and e1.2 no longer answers: \(gone)")
        } catch {
            await export.stopAll()
            await Self.remove(namespaces)
            throw error
        }
        await Self.remove(namespaces)
    }

    @Test("a volume only grows: a larger size restarts the export with it, a smaller one is refused")
    func growOnly() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-volumes-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = FileBacking(directory: directory)
        let path = files.path("vol-00000001")
        #expect(path == "\(directory)/vol-00000001.img")
        #expect(try files.ensure("vol-00000001", bytes: 1 << 20, source: nil) == false, "a new file is sized, not grown")
        #expect(try files.ensure("vol-00000001", bytes: 1 << 20, source: nil) == false)
        #expect(try files.ensure("vol-00000001", bytes: 2 << 20, source: nil) == true)
        #expect(throws: AoEError.self) { try files.ensure("vol-00000001", bytes: 1 << 20, source: nil) }
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_size == 2 << 20 && info.st_blocks == 0, "sparse: \(info.st_blocks) blocks")
    }
}
