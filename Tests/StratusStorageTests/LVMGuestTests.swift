import Foundation
@testable import StratusCompute
import StratusTestSupport
import Testing

@testable import StratusStorage

/// A shell in a TCG guest, on its second serial port (a QEMU socket chardev): `LVMBacking`
/// runs its commands through it, so the real lvm2 drives real device-mapper in Debian's kernel
/// (this host's kernel has no device-mapper). One command at a time; blocking.
final class GuestShell: CommandRunner, @unchecked Sendable {
    private let descriptor: Int32
    private let lock = NSLock()
    static let done = "@@stratus-done "
    static let errorsMark = "@@stratus-errors"

    init(socket path: String) throws {
        descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw AoEError("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.prefix(raw.count - 1).enumerated() { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            close(descriptor)
            throw AoEError("connect \(path): \(String(cString: strerror(errno)))")
        }
    }

    deinit { close(descriptor) }

    /// Single-quoted for the guest's `sh -c`.
    static func quote(_ argument: String) -> String { "'" + argument.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    func run(_ arguments: [String]) throws -> ChildProcess {
        try lock.withLock {
            let line = Array((arguments.map(Self.quote).joined(separator: " ") + "\n").utf8)
            guard line.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) }) == line.count else { throw AoEError("write to the guest shell failed") }
            var received: [UInt8] = []
            let deadline = ContinuousClock.now + .seconds(120)
            while ContinuousClock.now < deadline {
                var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, 1000) >= 0 else { throw AoEError("poll: \(String(cString: strerror(errno)))") }
                guard poller.revents != 0 else { continue }
                var buffer = [UInt8](repeating: 0, count: 65536)
                let count = read(descriptor, &buffer, buffer.count)
                guard count > 0 else { throw AoEError("the guest shell closed") }
                received += buffer[0..<count]
                let text = String(decoding: received, as: UTF8.self)
                guard let mark = text.range(of: Self.done), let end = text[mark.upperBound...].firstIndex(of: "\n"), let status = Int32(text[mark.upperBound..<end]) else { continue }
                let body = String(text[..<mark.lowerBound])
                let parts = body.components(separatedBy: Self.errorsMark + "\n")
                return ChildProcess(status: status, output: parts.first ?? "", errors: parts.count > 1 ? parts[1] : "")
            }
            throw AoEError("the guest did not finish \(arguments.joined(separator: " ")) within 120 s")
        }
    }
}

/// `--volume-group`: this host's kernel has no device-mapper (`/dev/mapper/control` does not
/// exist), so a TCG guest of the tiny image (Debian's kernel and its dm-mod, this host's lvm2,
/// blkdiscard and dd) holds the volume group on a virtio disk, and `LVMBacking` works it
/// through a shell on the guest's second serial port (issue 15).
@Suite struct LVMGuestTests {
    @Test("LVM-backed volumes in a TCG guest with device-mapper: lvcreate at the size, lvextend to grow (blocks kept), a sparse copy for a snapshot, a volume made from it, and deletion zeroes the extents before lvremove so the next volume reads zeros")
    func logicalVolumes() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/lvm") else {
            Issue.record("skipped: lvm2 is not installed on this host, so the guest has no lvm to run (make install-deps installs it)")
            return
        }
        let tiny: TinyImage
        do {
            tiny = try await TinyImage.build().image
        } catch {
            Issue.record("skipped: cannot build the tiny image on this machine: \(error)")
            return
        }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-lvm-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }

        let config = """
            devices { obtain_device_list_from_udev = 0 }
            activation { udev_sync = 0 udev_rules = 0 monitoring = 0 }
            global { use_lvmpolld = 0 }
            backup { backup = 0 archive = 0 }

            """
        let proof = """
            dmesg -n 1
            insmod /lib/net/dm_mod.ko
            mkdir -p /run/lvm /run/lock/lvm
            # The shell's port is raw (no echo, no line editing) before the test is told to send.
            stty -F /dev/ttyS1 raw -echo
            if /usr/sbin/lvm pvcreate -q /dev/vda && /usr/sbin/lvm vgcreate -q stratus /dev/vda; then echo "stratus-lvm: ready"; else echo "stratus-lvm: no volume group"; fi
            while IFS= read -r line; do
              sh -c "$line" >/tmp/out 2>/tmp/err; rc=$?
              cat /tmp/out; echo "\(GuestShell.errorsMark)"; cat /tmp/err; echo "\(GuestShell.done)$rc"
            done </dev/ttyS1 >/dev/ttyS1

            """
        let files = try TinyImage.hostFiles(["/usr/sbin/lvm", "/usr/sbin/blkdiscard", "/usr/bin/dd"], package: "lvm2") + [("/etc/lvm/lvm.conf", Data(config.utf8))]
        try tiny.ramdisk(withProof: proof, files: files).write(to: URL(fileURLWithPath: "\(root)/initrd.cpio"))
        // The physical volume: a sparse file; zeros the guest writes stay holes (detect-zeroes).
        let disk = "\(root)/pv.img"
        #expect(FileManager.default.createFile(atPath: disk, contents: nil))
        #expect(truncate(disk, 1 << 30) == 0)
        let socket = "\(root)/shell.sock"
        let guest = try await ProofGuest.start(kernel: tiny.kernel, initrd: "\(root)/initrd.cpio", cmdline: TinyImage.cmdline, console: "\(root)/console.log", extra: [
            "-drive", "file=\(disk),format=raw,if=virtio,discard=unmap,detect-zeroes=unmap",
            "-chardev", "socket,id=shell,path=\(socket),server=on,wait=off", "-device", "isa-serial,chardev=shell",
        ])
        defer { guest.stop() }
        let text = try await guest.wait(for: "stratus-lvm: ", timeout: .seconds(120))
        try #require(text.contains("stratus-lvm: ready"), "the guest made volume group stratus on /dev/vda: \(text.suffix(1500))")
        let shell = try GuestShell(socket: socket)
        let lvm = LVMBacking(volumeGroup: "stratus", runner: shell)
        let mib: Int64 = 1 << 20
        func sh(_ command: String) async throws -> ChildProcess { try await offPool { try shell.run(["sh", "-c", command]) } }
        func head(_ device: String, _ count: Int) async throws -> String { try await sh("/usr/bin/dd if=\(device) bs=512 count=1 2>/dev/null | head -c \(count)").output }

        #expect(try await offPool { try lvm.volumes() } == [], "a new group holds no volumes")
        #expect(try await offPool { try lvm.ensure("vol-00000001", bytes: 16 * mib, source: nil) } == false, "created, not grown")
        #expect(try await offPool { try lvm.sizes() } == ["vol-00000001": 16 * mib], "lvs reports 16 MiB")
        #expect(lvm.path("vol-00000001") == "/dev/stratus/vol-00000001" && lvm.isBlockDevice)
        let marker = "stratus-lvm-marker-\(UUID().uuidString.prefix(8))"
        let wrote = try await sh("printf '\(marker)' | /usr/bin/dd of=/dev/stratus/vol-00000001 conv=fsync 2>&1")
        #expect(wrote.status == 0, "\(wrote.output)")
        // And at 1 MiB, past the 4 KiB lvcreate --zero clears: only the wipe on delete keeps it from the next volume.
        let deep = try await sh("printf '\(marker)' | /usr/bin/dd of=/dev/stratus/vol-00000001 bs=512 seek=2048 conv=fsync 2>&1")
        #expect(deep.status == 0, "\(deep.output)")
        #expect(try await offPool { try lvm.ensure("vol-00000001", bytes: 16 * mib, source: nil) } == false, "the same size changes nothing")
        #expect(try await offPool { try lvm.ensure("vol-00000001", bytes: 32 * mib, source: nil) } == true, "grown")
        #expect(try await offPool { try lvm.sizes()["vol-00000001"] } == 32 * mib, "lvextend made it 32 MiB")
        #expect(try await head("/dev/stratus/vol-00000001", marker.utf8.count) == marker, "its blocks are kept when it grows")
        #expect(throws: AoEError.self, "a volume never shrinks") { try lvm.ensure("vol-00000001", bytes: 16 * mib, source: nil) }

        // A snapshot's file, then a volume made from it.
        #expect(try await offPool { try lvm.copy("vol-00000001", to: "/tmp/snap-00000001.img") } == "copy")
        let copied = try await sh("ls -ls /tmp/snap-00000001.img")
        #expect(copied.output.contains("33554432"), "the copy holds 32 MiB: \(copied.output)")
        #expect(try await offPool { try lvm.ensure("vol-00000002", bytes: 32 * mib, source: "/tmp/snap-00000001.img") } == false)
        #expect(try await head("/dev/stratus/vol-00000002", marker.utf8.count) == marker, "the volume made from the snapshot starts with its blocks")

        // Deleted: zeroed, then removed; the next volume gets its extents and reads zeros.
        try await offPool { try lvm.remove("vol-00000001") }
        #expect(try await offPool { try lvm.volumes() } == ["vol-00000002"])
        try await offPool { try lvm.remove("vol-00000001") }  // nothing left to remove is success
        let extents = try await sh("/usr/sbin/lvm lvs --noheadings -o seg_pe_ranges stratus/vol-00000002")
        #expect(try await offPool { try lvm.ensure("vol-00000003", bytes: 32 * mib, source: nil) } == false)
        let reused = try await sh("/usr/sbin/lvm lvs --noheadings -o seg_pe_ranges stratus/vol-00000003")
        #expect(reused.output.contains("/dev/vda:0-"), "the new volume starts on the first extents, vol-00000001's (vol-00000002 is on \(extents.output)): \(reused.output)")
        let left = try await sh("/usr/bin/dd if=/dev/stratus/vol-00000003 bs=1M count=2 2>/dev/null | grep -c '\(marker)'")
        #expect(left.output.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "no block of the deleted volume reaches the next (its marker at 1 MiB is gone): \(left.output)")
        let beforeWipe = try await sh("/usr/bin/dd if=/dev/stratus/vol-00000002 bs=1M count=2 2>/dev/null | grep -c '\(marker)'")
        #expect(beforeWipe.output.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "while the copy of it still holds the marker (the search finds it): \(beforeWipe.output)")
        for volume in ["vol-00000002", "vol-00000003"] { try await offPool { try lvm.remove(volume) } }
        #expect(try await offPool { try lvm.volumes() } == [])
    }
}
