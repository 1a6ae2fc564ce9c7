import Foundation
import StratusCompute
import StratusStorage
import StratusTestSupport
import Testing

/// `stratus serve --aoe-interface` in a network namespace (`san`): a bridge of the storage
/// segment with three veth ports (vblade's, the wire check's, and one to the initiator namespace
/// `ini`). Volumes become vblade exports that the Swift AoE client in `ini` finds on the wire.
@Suite(.serialized) struct VolumeExportTests {
    static func ip(_ arguments: [String]) async -> (status: Int32, output: String) { await HostNetworkTests.ip(arguments) }

    /// Processes whose command line is vblade exporting `backing` (or any file under it, with `under`).
    static func vblades(exporting backing: String, under: Bool = false) -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
            guard let pid = Int32(entry), let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return nil }
            let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return arguments.first?.hasSuffix("vblade") == true && (under ? arguments.last?.hasPrefix(backing) == true : arguments.last == backing) ? pid : nil
        }
    }

    /// Namespace `san` with bridge br-aoe and veth ports aoe-export, aoe-check and to-ini (whose
    /// peer is `eth0` in namespace `ini`), all up.
    static func storageSegment() async -> (san: String, ini: String) {
        let tag = UUID().uuidString.prefix(6).lowercased()
        let (san, ini) = ("stratus-vsan-\(tag)", "stratus-vini-\(tag)")
        var commands: [[String]] = [
            ["netns", "add", san], ["netns", "add", ini],
            ["-n", san, "link", "set", "lo", "up"],
            ["-n", san, "link", "add", "br-aoe", "type", "bridge"],
            ["-n", san, "link", "add", "aoe-export", "type", "veth", "peer", "name", "aoe-export-p"],
            ["-n", san, "link", "add", "aoe-check", "type", "veth", "peer", "name", "aoe-check-p"],
            ["-n", san, "link", "add", "to-ini", "type", "veth", "peer", "name", "eth0", "netns", ini],
            ["-n", san, "link", "set", "aoe-export-p", "master", "br-aoe"], ["-n", san, "link", "set", "aoe-check-p", "master", "br-aoe"],
            ["-n", san, "link", "set", "to-ini", "master", "br-aoe"],
        ]
        for link in ["br-aoe", "aoe-export", "aoe-export-p", "aoe-check", "aoe-check-p", "to-ini"] { commands.append(["-n", san, "link", "set", link, "up"]) }
        commands.append(["-n", ini, "link", "set", "eth0", "up"])
        for command in commands
        {
            let result = await Self.ip(command)
            #expect(result.status == 0, "ip \(command.joined(separator: " ")): \(result.output)")
        }
        return (san, ini)
    }

    /// alice's project acme with one 1 GB volume, data-1.
    static let oneVolume = """
        apiVersion: stratus/v1
        kind: User
        metadata: {name: alice}
        spec: {projects: [{project: acme, roles: [sysadmin]}]}
        ---
        apiVersion: stratus/v1
        kind: Project
        metadata: {name: acme}
        spec: {manager: alice}
        ---
        apiVersion: stratus/v1
        kind: Volume
        metadata: {name: data-1, project: acme}
        spec: {sizeGB: 1}

        """

    /// data-1 as `get -o json` shows it once Available (or as it is after 60 s).
    static func availableVolume(_ cli: CLI) async throws -> [String: Any] {
        var volume: [String: Any] = [:]
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let listed = try await cli.run("get", "volume", "data-1", "-p", "acme", "-o", "json")
            volume = (try? JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String: Any]) ?? [:]
            if (volume["status"] as? [String: Any])?["phase"] as? String == "Available" { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        return volume
    }

    /// `stratus serve` in `namespace` exporting volumes on aoe-export, checked from aoe-check, applying `cloud.yaml`.
    static func serve(in namespace: String, cli: CLI, hypervisor: String) throws -> (Process, log: String) {
        let log = "\(cli.workDirectory)/serve.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = ["netns", "exec", namespace, CLI.binary, "serve", "--data-dir", cli.dataDirectory, "--api-port", "0", "--ec2-port", "0", "--s3-port", "0",
                             "--hypervisor", hypervisor, "--aoe-interface", "aoe-export", "--aoe-check-interface", "aoe-check", "--apply", "\(cli.workDirectory)/cloud.yaml"]
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return (process, log)
    }

    @Test("a Volume is exported by vblade and Available only once it answers on the wire; EC2 shows available; a killed vblade comes back; deleting the volume ends its export and file")
    func volumesOnTheWire() async throws {
        guard getuid() == 0 else {
            Issue.record("skipped: exporting volumes needs root (vblade, raw sockets, namespaces); this test runs as uid \(getuid())")
            return
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/vblade") else {
            Issue.record("skipped: vblade is not installed (make install-deps installs it)")
            return
        }
        let (san, ini) = await Self.storageSegment()
        let cli = try CLI()
        var serve: Process?
        defer {
            if let serve, serve.isRunning { serve.interrupt(); serve.waitUntilExit() }
            for pid in Self.vblades(exporting: "\(cli.dataDirectory)/volumes/", under: true) { kill(pid, SIGKILL) }
            _ = HostNetworkTests.blockingIP(["netns", "del", san])
            _ = HostNetworkTests.blockingIP(["netns", "del", ini])
        }
        try cli.write("cloud.yaml", Self.oneVolume)
        let (process, log) = try Self.serve(in: san, cli: cli, hypervisor: "test")
        serve = process
        let serveLog = { (try? String(contentsOfFile: log, encoding: .utf8)).map { String($0.suffix(3000)) } ?? "" }

        func volume() async throws -> [String: Any] {
            let listed = try await cli.run("get", "volume", "data-1", "-p", "acme", "-o", "json")
            return (try? JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String: Any]) ?? [:]
        }
        func details(_ resource: [String: Any]) -> [String: Any] { ((resource["status"] as? [String: Any])?["details"] as? [String: Any]) ?? [:] }
        func phase(_ resource: [String: Any]) -> String? { (resource["status"] as? [String: Any])?["phase"] as? String }

        let current = try await Self.availableVolume(cli)
        #expect(phase(current) == "Available", "the volume became Available: \(current)\n\(serveLog())")
        let address = details(current)["aoe"] as? String
        #expect(address == "e1.0", "the first volume gets shelf 1, slot 0: \(details(current))")
        let id = try #require((current["metadata"] as? [String: Any])?["id"] as? String)
        let backing = "\(cli.dataDirectory)/volumes/\(id).img"
        let first = Self.vblades(exporting: backing)
        #expect(first.count == 1, "one vblade exports \(backing): \(first)")
        let table = try await cli.run("get", "volumes", "-p", "acme")
        #expect(table.stdout.contains("AOE") && table.stdout.contains("e1.0") && table.stdout.contains("STORAGE-NODE"), "\(table.stdout)")

        // The initiator's side of the wire: the export answers with the volume's size.
        let client = try AoEClient(interface: "eth0", namespace: ini)
        let found = try await offPool { try client.discover(timeout: .seconds(1)) }
        #expect(found.first { $0.address == "e1.0" }?.identity?.sectors == 2_097_152, "e1.0 answers IDENTIFY with 1 GiB in sectors: \(found)")

        // EC2 shows the same volume as available.
        let info = try #require(FileManager.default.contents(atPath: "\(cli.dataDirectory)/serve.json").flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] })
        let ec2 = try #require(info["ec2URL"] as? String, "serve.json names the EC2 URL: \(info)")
        let credentials = IdentityCLITests.exports(try await cli.run("credentials", "alice", "-p", "acme").stdout)
        let script = "import boto3; print([v['State'] for v in boto3.client('ec2', endpoint_url='\(ec2)', region_name='nova').describe_volumes()['Volumes']])"
        let described = try await EC2ClientTests.run(["/usr/sbin/ip", "netns", "exec", san, "python3", "-c", script], environment: credentials)
        #expect(described.output.contains("['available']"), "DescribeVolumes: \(described.output)")

        // vblade killed by PID: the supervisor starts it again and the export answers again.
        if let pid = first.first { kill(pid, SIGKILL) }
        var again: [AoETarget] = []
        let back = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < back {
            again = try await offPool { try client.discover(timeout: .milliseconds(300)) }
            if again.contains(where: { $0.address == "e1.0" }), let now = Self.vblades(exporting: backing).first, !first.contains(now) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(again.contains { $0.address == "e1.0" } && Self.vblades(exporting: backing).count == 1, "a new vblade answers: \(again), \(Self.vblades(exporting: backing))")

        // Grown: the file grows and the export answers with the new size.
        try cli.write("cloud.yaml", try cli.read("cloud.yaml").replacingOccurrences(of: "spec: {sizeGB: 1}", with: "spec: {sizeGB: 2}"))
        let grown = try await cli.run("apply", "-f", "\(cli.workDirectory)/cloud.yaml")
        #expect(grown.status == 0, "\(grown.stdout)\(grown.stderr)")
        var larger: [AoETarget] = []
        let growing = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < growing {
            larger = try await offPool { try client.discover(timeout: .milliseconds(300)) }
            if larger.first(where: { $0.address == "e1.0" })?.identity?.sectors == 4_194_304 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(larger.first { $0.address == "e1.0" }?.identity?.sectors == 4_194_304, "after growing to 2 GB e1.0 answers with 2 GiB: \(larger)")

        // Snapshot through EC2, then a volume from it: the new volume starts with the old one's blocks.
        let marker = Array("stratus-snapshot-marker".utf8)
        let writer = try #require(FileHandle(forWritingAtPath: backing))
        try writer.write(contentsOf: Data(marker))
        try writer.close()
        let snapshotScript = """
            import boto3, time
            ec2 = boto3.client('ec2', endpoint_url='\(ec2)', region_name='nova')
            snap = ec2.create_snapshot(VolumeId='\(id)', Description='before')['SnapshotId']
            for _ in range(300):
                s = ec2.describe_snapshots(SnapshotIds=[snap])['Snapshots'][0]
                if s['State'] == 'completed': break
                time.sleep(0.1)
            print('snapshot', s['State'], s['VolumeId'], s['VolumeSize'], s['Progress'])
            try:
                ec2.create_volume(SnapshotId=snap, Size=1, AvailabilityZone='nova')
            except Exception as e:
                print('small', e.response['Error']['Code'])
            vol = ec2.create_volume(SnapshotId=snap, AvailabilityZone='nova')
            for _ in range(300):
                v = ec2.describe_volumes(VolumeIds=[vol['VolumeId']])['Volumes'][0]
                if v['State'] == 'available': break
                time.sleep(0.1)
            print('restored', v['VolumeId'], v['State'], v['Size'], v.get('SnapshotId') == snap)
            try:
                ec2.delete_snapshot(SnapshotId=snap)
                print('deleted', len(ec2.describe_snapshots()['Snapshots']))
            except Exception as e:
                print('delete failed', e)
            """
        let restored = try await EC2ClientTests.run(["/usr/sbin/ip", "netns", "exec", san, "python3", "-c", snapshotScript], environment: credentials)
        #expect(restored.output.contains("snapshot completed \(id) 2 100%"), "CreateSnapshot → completed: \(restored.output)")
        #expect(restored.output.contains("small InvalidParameterValue"), "a volume smaller than its snapshot is refused: \(restored.output)")
        #expect(restored.output.contains(" available 2 True"), "CreateVolume from the snapshot → available, 2 GiB: \(restored.output)")
        #expect(restored.output.contains("deleted 0"), "DeleteSnapshot: \(restored.output)")
        let copies = try await offPool { try client.discover(timeout: .seconds(1)) }
        let copy = try #require(copies.first { $0.address == "e1.1" }, "the restored volume answers as e1.1: \(copies)")
        let sector = try await offPool { try client.read(copy, lba: 0, count: 1) }
        #expect(Array(sector.prefix(marker.count)) == marker, "the restored volume holds the snapshot's blocks")

        let deleted = try await cli.run("delete", "volume", "data-1", "-p", "acme")
        #expect(deleted.status == 0, "\(deleted.stdout)\(deleted.stderr)")
        let gone = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < gone, !Self.vblades(exporting: backing).isEmpty || FileManager.default.fileExists(atPath: backing) {
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(Self.vblades(exporting: backing).isEmpty && !FileManager.default.fileExists(atPath: backing), "deleting the volume stopped its vblade and removed its file\n\(serveLog())")
        let silent = try await offPool { try client.discover(timeout: .milliseconds(500)) }
        #expect(!silent.contains { $0.address == "e1.0" }, "and e1.0 answers no more: \(silent)")
    }

    @Test("a TCG guest on the storage segment is a real AoE initiator: Linux's aoe driver finds the volume as /dev/etherd/e1.0 with its size, reads the block the test wrote, and its write lands in the backing file")
    func guestInitiator() async throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/sbin/vblade") else {
            Issue.record("skipped: needs root and vblade (uid \(getuid()))")
            return
        }
        let image: TinyImage
        do {
            image = try await TinyImage.build().image
        } catch {
            Issue.record("skipped: the tiny image cannot be built on this machine, so no guest can be the initiator: \(error)")
            return
        }
        let (san, ini) = await Self.storageSegment()
        // The guest's NIC: a tap port of the storage bridge (this host's kernel has no aoe
        // initiator; the guest's Debian kernel has aoe.ko).
        for command in [["-n", san, "tuntap", "add", "dev", "aoe-guest", "mode", "tap"], ["-n", san, "link", "set", "aoe-guest", "master", "br-aoe"], ["-n", san, "link", "set", "aoe-guest", "up"]] {
            let result = await Self.ip(command)
            #expect(result.status == 0, "ip \(command.joined(separator: " ")): \(result.output)")
        }
        let cli = try CLI()
        var serve: Process?
        var qemu: ProofGuest?
        defer {
            qemu?.stop()
            if let serve, serve.isRunning { serve.interrupt(); serve.waitUntilExit() }
            for pid in Self.vblades(exporting: "\(cli.dataDirectory)/volumes/", under: true) { kill(pid, SIGKILL) }
            _ = HostNetworkTests.blockingIP(["netns", "del", san])
            _ = HostNetworkTests.blockingIP(["netns", "del", ini])
        }
        try cli.write("cloud.yaml", Self.oneVolume)
        let (process, log) = try Self.serve(in: san, cli: cli, hypervisor: "test")
        serve = process
        let serveLog = { (try? String(contentsOfFile: log, encoding: .utf8)).map { String($0.suffix(3000)) } ?? "" }
        let volume = try await Self.availableVolume(cli)
        let details = ((volume["status"] as? [String: Any])?["details"] as? [String: Any]) ?? [:]
        let address = try #require(details["aoe"] as? String, "the volume became Available with an AoE address: \(volume)\n\(serveLog())")
        let id = try #require((volume["metadata"] as? [String: Any])?["id"] as? String)
        let backing = "\(cli.dataDirectory)/volumes/\(id).img"
        let hostMarker = "written-by-the-host-\(UUID().uuidString.prefix(8))"
        let guestMarker = "written-by-the-guest-\(UUID().uuidString.prefix(8))"
        let writer = try #require(FileHandle(forWritingAtPath: backing))
        try writer.write(contentsOf: Data(hostMarker.utf8))
        try writer.close()

        // The guest loads aoe.ko, asks for discovery until the target's block device appears,
        // reads sector 0 and writes its marker into sector 1 (synced, so it goes out on the wire).
        let marker = "stratus-aoe:"
        let target = "/dev/etherd/\(address)"
        let proof = """
            dmesg -n 1
            ip link set eth0 up
            insmod /lib/net/aoe.ko aoe_iflist=eth0
            i=0
            while [ ! -b \(target) ] && [ $i -lt 60 ]; do echo > /dev/etherd/discover; sleep 1; i=$((i+1)); done
            if [ -b \(target) ]; then
              echo "\(marker) found \(target) sectors $(cat '/sys/block/etherd!\(address)/size')"
              echo "\(marker) read $(dd if=\(target) bs=512 count=1 2>/dev/null | head -c \(hostMarker.utf8.count))"
              printf '\(guestMarker)' | dd of=\(target) bs=512 seek=1 conv=sync,fsync 2>/dev/null && sync && echo "\(marker) wrote"
            else
              echo "\(marker) no \(target) after 60 s: $(ls /dev/etherd)"
            fi
            echo "\(marker) done"

            """
        let initrd = "\(cli.workDirectory)/initrd.cpio"
        try image.ramdisk(withProof: proof).write(to: URL(fileURLWithPath: initrd))
        let guest = try await ProofGuest.start(kernel: image.kernel, initrd: initrd, cmdline: TinyImage.cmdline, console: "\(cli.workDirectory)/guest-console.log", memoryMiB: 256,
                                   extra: ["-netdev", "tap,id=n0,ifname=aoe-guest,script=no,downscript=no", "-device", "virtio-net-pci,netdev=n0"], namespace: san)
        qemu = guest
        let text = try await guest.wait(for: "\(marker) done")
        #expect(text.contains("\(marker) found \(target) sectors 2097152"), "the guest's aoe driver found \(target) with 1 GiB: \(text.suffix(1500))\n\(serveLog())")
        #expect(text.contains("\(marker) read \(hostMarker)"), "the guest read the host's block over AoE: \(text.suffix(800))")
        #expect(text.contains("\(marker) wrote"), "the guest wrote its block: \(text.suffix(800))")
        let reader = try #require(FileHandle(forReadingAtPath: backing))
        try reader.seek(toOffset: 512)
        let written = try reader.read(upToCount: guestMarker.utf8.count) ?? Data()
        try reader.close()
        #expect(String(decoding: written, as: UTF8.self) == guestMarker, "sector 1 of \(backing) holds the guest's marker")
    }

    @Test("a volume attached to a running TCG guest is hot-plugged: the guest sees a virtio disk with the volume's serial and size; the volume is Attached and EC2 shows in-use, attached; grown, the guest sees the new size; detached, the guest lets go and it is available again")
    func hotPlugIntoRunningGuest() async throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/sbin/vblade") else {
            Issue.record("skipped: needs root and vblade (uid \(getuid()))")
            return
        }
        let image: TinyImage
        do {
            image = try await TinyImage.build().image
        } catch {
            Issue.record("skipped: the tiny image cannot be built on this machine, so no guest can boot: \(error)")
            return
        }
        let (san, ini) = await Self.storageSegment()
        let cli = try CLI()
        var serve: Process?
        defer {
            if let serve, serve.isRunning { serve.interrupt(); serve.waitUntilExit() }
            for pid in MakeRunTests.qemuProcesses(naming: cli.dataDirectory) { kill(pid, SIGKILL) }
            for pid in Self.vblades(exporting: "\(cli.dataDirectory)/volumes/", under: true) { kill(pid, SIGKILL) }
            if let alias = EmbeddedQEMU.alias(of: "\(cli.dataDirectory)/libvirt") { try? FileManager.default.removeItem(atPath: alias) }
            _ = HostNetworkTests.blockingIP(["netns", "del", san])
            _ = HostNetworkTests.blockingIP(["netns", "del", ini])
        }
        let cloud = """
            apiVersion: stratus/v1
            kind: User
            metadata: {name: alice}
            spec: {projects: [{project: acme, roles: [sysadmin]}]}
            ---
            apiVersion: stratus/v1
            kind: Project
            metadata: {name: acme}
            spec: {manager: alice}
            ---
            apiVersion: stratus/v1
            kind: Image
            metadata: {name: tiny, project: acme}
            spec: {source: \(image.disk), format: raw, kernel: \(image.kernel), ramdisk: \(image.ramdisk), cmdline: "\(TinyImage.cmdline)"}
            ---
            apiVersion: stratus/v1
            kind: Instance
            metadata: {name: web-1, project: acme}
            spec: {image: tiny, instanceType: m1.tiny}
            ---
            apiVersion: stratus/v1
            kind: Volume
            metadata: {name: data-1, project: acme}
            spec: {sizeGB: 1}

            """
        try cli.write("cloud.yaml", cloud)
        let (process, log) = try Self.serve(in: san, cli: cli, hypervisor: "embed")
        serve = process
        let serveLog = { (try? String(contentsOfFile: log, encoding: .utf8)).map { String($0.suffix(3000)) } ?? "" }
        func console() async throws -> String { try await cli.run("console", "web-1", "-p", "acme").stdout }

        var text = ""
        let booted = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < booted {
            text = try await console()
            if text.contains("login:") { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(text.contains("stratus-tiny login:"), "web-1 booted: \(text.suffix(1500))\n\(serveLog())")
        #expect(!text.contains(TinyImage.diskMarker), "no volume disk before the attachment: \(text.suffix(500))")

        // Attach while the guest runs.
        try cli.write("cloud.yaml", cloud.replacingOccurrences(of: "spec: {sizeGB: 1}", with: "spec: {sizeGB: 1, attachment: {instance: web-1, device: /dev/vdb}}"))
        let applied = try await cli.run("apply", "-f", "\(cli.workDirectory)/cloud.yaml")
        #expect(applied.status == 0, "\(applied.stdout)\(applied.stderr)")
        let volume = try await cli.run("get", "volume", "data-1", "-p", "acme", "-o", "json")
        let id = try #require(((try? JSONSerialization.jsonObject(with: Data(volume.stdout.utf8))) as? [String: Any]).flatMap { ($0["metadata"] as? [String: Any])?["id"] as? String })
        let line = "\(TinyImage.diskMarker) vdb serial \(id) sectors 2097152"
        let plugged = ContinuousClock.now + .seconds(90)
        while ContinuousClock.now < plugged {
            text = try await console()
            if text.contains(line) { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(text.contains(line), "the guest sees the hot-plugged disk (\(line)): \(text.suffix(1500))\n\(serveLog())")

        var phase = ""
        let attached = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < attached {
            let listed = try await cli.run("get", "volume", "data-1", "-p", "acme", "-o", "json")
            phase = (((try? JSONSerialization.jsonObject(with: Data(listed.stdout.utf8))) as? [String: Any])?["status"] as? [String: Any])?["phase"] as? String ?? ""
            if phase == "Attached" { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(phase == "Attached", "the volume is Attached\n\(serveLog())")
        let info = try #require(FileManager.default.contents(atPath: "\(cli.dataDirectory)/serve.json").flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] })
        let ec2 = try #require(info["ec2URL"] as? String)
        let credentials = IdentityCLITests.exports(try await cli.run("credentials", "alice", "-p", "acme").stdout)
        let script = "import boto3; v = boto3.client('ec2', endpoint_url='\(ec2)', region_name='nova').describe_volumes()['Volumes'][0]; print(v['State'], [a['State'] for a in v['Attachments']], [a['Device'] for a in v['Attachments']])"
        let described = try await EC2ClientTests.run(["/usr/sbin/ip", "netns", "exec", san, "python3", "-c", script], environment: credentials)
        #expect(described.output.contains("in-use ['attached'] ['/dev/vdb']"), "DescribeVolumes: \(described.output)")

        // Grown while attached: the export answers with 2 GiB and the running guest is told (virDomainBlockResize).
        let attachedCloud = cloud.replacingOccurrences(of: "spec: {sizeGB: 1}", with: "spec: {sizeGB: 2, attachment: {instance: web-1, device: /dev/vdb}}")
        try cli.write("cloud.yaml", attachedCloud)
        let grown = try await cli.run("apply", "-f", "\(cli.workDirectory)/cloud.yaml")
        #expect(grown.status == 0, "\(grown.stdout)\(grown.stderr)")
        let larger = "\(TinyImage.diskMarker) vdb serial \(id) sectors 4194304"
        let growing = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < growing {
            text = try await console()
            if text.contains(larger) { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(text.contains(larger), "the running guest sees its disk grow to 2 GiB (\(larger)): \(text.suffix(1500))\n\(serveLog())")

        // Detach while the guest runs: the guest releases the disk (ACPI hot-unplug) and the volume is available again.
        try cli.write("cloud.yaml", cloud.replacingOccurrences(of: "spec: {sizeGB: 1}", with: "spec: {sizeGB: 2}"))
        let detached = try await cli.run("apply", "-f", "\(cli.workDirectory)/cloud.yaml")
        #expect(detached.status == 0, "\(detached.stdout)\(detached.stderr)")
        var released: [String: Any] = [:]
        let unplugged = ContinuousClock.now + .seconds(90)
        while ContinuousClock.now < unplugged {
            let listed = try await cli.run("get", "volume", "data-1", "-p", "acme", "-o", "json")
            released = ((try? JSONSerialization.jsonObject(with: Data(listed.stdout.utf8))) as? [String: Any]) ?? [:]
            let status = released["status"] as? [String: Any]
            if status?["phase"] as? String == "Available", (status?["details"] as? [String: Any])?["attachedTo"] == nil { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        let status = released["status"] as? [String: Any]
        #expect(status?["phase"] as? String == "Available" && (status?["details"] as? [String: Any])?["attachedTo"] == nil, "the guest released the disk and the volume is Available: \(released)\n\(serveLog())")
        let after = try await EC2ClientTests.run(["/usr/sbin/ip", "netns", "exec", san, "python3", "-c", script], environment: credentials)
        #expect(after.output.contains("available [] []"), "DescribeVolumes after the detach: \(after.output)")
    }
}
