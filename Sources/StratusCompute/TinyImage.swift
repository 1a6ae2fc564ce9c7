import Foundation

/// A tiny bootable guest built from this host's Debian packages: Debian's kernel, unpacked to an
/// ELF `vmlinux`, and a busybox initramfs whose `/init` prints a banner and a login prompt on the
/// serial console (RECIPES §2a).
///
/// QEMU boots an ELF kernel through PVH: the prompt is on the console about 4 s after start
/// under TCG, against 10–11 s for the compressed bzImage. The image is built once into a
/// directory (`/var/tmp/stratus/images/tiny` by default) and reused while its recipe is the same;
/// `stratus image build-tiny` builds it, and the tests boot the same one.
public struct TinyImage: Sendable, Equatable, Codable {
    /// Where `stratus image build-tiny`, `make run` and the tests keep it.
    public static let defaultDirectory = "/var/tmp/stratus/images/tiny"
    /// Words the guest prints on its console once userland runs, before the login prompt.
    public static let banner = "Stratus tiny guest"
    /// The kernel command line the image is meant to boot with: the console on the first serial
    /// port, and `no_timer_check`: under TCG on a busy host the kernel's IO-APIC timer check was
    /// seen to fail and panic at boot ("IO-APIC + timer doesn't work!").
    public static let cmdline = "console=ttyS0 panic=-1 no_timer_check"

    /// The directory holding the files.
    public var directory: String
    /// The Debian package the kernel came from (`linux-image-6.1.0-…-amd64`).
    public var kernelPackage: String
    /// Changes whenever the recipe (init script, layout) does, so a stale cache is rebuilt.
    var recipe: String

    /// The ELF kernel.
    public var kernel: String { (directory as NSString).appendingPathComponent("vmlinux") }
    /// The initramfs (an uncompressed newc cpio archive).
    public var ramdisk: String { (directory as NSString).appendingPathComponent("initrd.cpio") }
    /// A 1 MiB raw disk: instances get a qcow2 overlay of it, which the guest does not use.
    public var disk: String { (directory as NSString).appendingPathComponent("disk.raw") }

    /// The image in `directory` if it is complete and of the current recipe.
    public static func cached(in directory: String = defaultDirectory) -> TinyImage? {
        guard let data = FileManager.default.contents(atPath: stampPath(directory)),
            var image = try? JSONDecoder().decode(TinyImage.self, from: data), image.recipe == recipeDigest
        else { return nil }
        image.directory = directory
        let files = [image.kernel, image.ramdisk, image.disk]
        return files.allSatisfy(FileManager.default.fileExists(atPath:)) ? image : nil
    }

    /// The cached image, or a new one built into `directory` (about a minute: one kernel
    /// package is downloaded with apt-get). The work runs on a thread of its own.
    ///
    /// Builds into a temporary directory beside `directory` and renames it into place, so a
    /// reader never sees half an image and two builders do not collide.
    public static func build(in directory: String = defaultDirectory, force: Bool = false) async throws(TinyImageError) -> (image: TinyImage, built: Bool) {
        if !force, let image = cached(in: directory) { return (image, false) }
        let result: Result<TinyImage, TinyImageError> = await withCheckedContinuation { continuation in
            let thread = Thread {
                do throws(TinyImageError) {
                    // One build at a time in a process (tests ask for the image at once): the
                    // ones that waited find the first one's image. Other processes build beside it.
                    building.lock()
                    defer { building.unlock() }
                    if !force, let image = cached(in: directory) {
                        continuation.resume(returning: .success(image))
                        return
                    }
                    continuation.resume(returning: .success(try buildBlocking(in: directory)))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
            thread.name = "stratus-tiny-image"
            thread.start()
        }
        return (try result.get(), true)
    }

    private static let building = NSLock()

    private static func buildBlocking(in directory: String) throws(TinyImageError) -> TinyImage {
        let manager = FileManager.default
        for tool in ["/usr/bin/apt-cache", "/usr/bin/apt-get", "/usr/bin/dpkg-deb", "/usr/bin/xz", "/bin/tar"] where !manager.isExecutableFile(atPath: tool) {
            throw TinyImageError(.toolMissing, "\(tool) is missing; the tiny image is built from Debian packages with apt-get, dpkg-deb, tar and xz (make install-deps)")
        }
        guard let busybox = manager.contents(atPath: "/bin/busybox") else {
            throw TinyImageError(.toolMissing, "/bin/busybox is missing; install busybox-static (make install-deps)")
        }
        guard !needsInterpreter(busybox) else {
            throw TinyImageError(.toolMissing, "/bin/busybox is dynamically linked and cannot run alone in an initramfs; install busybox-static (make install-deps)")
        }
        let parent = (directory as NSString).deletingLastPathComponent
        let work = "\(directory).build-\(getpid())"
        do {
            try manager.createDirectory(atPath: parent, withIntermediateDirectories: true)
            try? manager.removeItem(atPath: work)
            try manager.createDirectory(atPath: "\(work)/image", withIntermediateDirectories: true)
        } catch {
            throw TinyImageError(.buildFailed, "cannot create \(work): \(error)")
        }
        defer { try? manager.removeItem(atPath: work) }

        let package = try kernelPackage()
        // apt-get download writes into the current directory; the paths reach the shell as arguments, never as code.
        try step("/bin/sh", ["-c", "cd \"$1\" && exec /usr/bin/apt-get download -q \"$2\"", "sh", work, package])
        guard let deb = (try? manager.contentsOfDirectory(atPath: work))?.first(where: { $0.hasSuffix(".deb") }) else {
            throw TinyImageError(.kernelUnavailable, "apt-get download \(package) left no .deb in \(work)")
        }
        // /boot and the few modules a virtio NIC needs: the package's others (hundreds of MB) are not.
        try manager.createDirectory(atPathOrThrow: "\(work)/root")
        let members = ["./boot"] + (networkModules + proofModules).map { "./lib/modules/*/kernel/\($0.path)" }
        try step("/bin/sh", ["-c", "deb=\"$1\" dir=\"$2\"; shift 2; /usr/bin/dpkg-deb --fsys-tarfile \"$deb\" | /bin/tar -x -C \"$dir\" --wildcards \"$@\"", "sh", "\(work)/\(deb)", "\(work)/root"] + members)
        let image = TinyImage(directory: "\(work)/image", kernelPackage: package, recipe: recipeDigest)
        try unpackKernel(from: "\(work)/root/boot", to: image.kernel, work: work)
        var modules: [(name: String, contents: Data)] = []
        let release = (try? manager.contentsOfDirectory(atPath: "\(work)/root/lib/modules"))?.first ?? ""
        for module in networkModules + proofModules {
            guard let contents = manager.contents(atPath: "\(work)/root/lib/modules/\(release)/kernel/\(module.path)") else {
                throw TinyImageError(.kernelUnavailable, "the kernel package has no \(module.path)")
            }
            modules.append((module.name, contents))
        }
        do {
            try initramfs(busybox: busybox, modules: modules, tools: try iproute2Files()).write(to: URL(fileURLWithPath: image.ramdisk))
            try Data(count: 1 << 20).write(to: URL(fileURLWithPath: image.disk))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            var stamp = image
            stamp.directory = directory  // where it will be read
            try encoder.encode(stamp).write(to: URL(fileURLWithPath: stampPath(image.directory)))
            // QEMU may run as another user (libvirt-qemu under a system libvirtd): everything readable.
            for path in [image.directory, image.kernel, image.ramdisk, image.disk, stampPath(image.directory)] {
                try manager.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
            }
            try? manager.removeItem(atPath: directory)
            try manager.moveItem(atPath: image.directory, toPath: directory)
        } catch {
            if let other = cached(in: directory) { return other }  // another builder finished first
            throw TinyImageError(.buildFailed, "cannot write the image into \(directory): \(error)")
        }
        var done = image
        done.directory = directory
        return done
    }

    /// The kernel package `linux-image-amd64` depends on, asking apt to update its lists once if it knows none.
    private static func kernelPackage() throws(TinyImageError) -> String {
        func find() throws(TinyImageError) -> String? {
            let depends = try step("/usr/bin/apt-cache", ["depends", "linux-image-amd64"])
            return depends.split(separator: "\n").lazy.map { $0.trimmingCharacters(in: .whitespaces) }
                .first { $0.hasPrefix("Depends: linux-image-6") || $0.hasPrefix("Depends: linux-image-7") }
                .map { String($0.dropFirst("Depends: ".count)) }
        }
        if let package = try? find() { return package }
        try step("/usr/bin/apt-get", ["update", "-qq"])  // a machine whose package lists were never fetched
        guard let package = try find() else {
            throw TinyImageError(.kernelUnavailable, "apt knows no kernel package for linux-image-amd64; check /etc/apt/sources.list and run apt-get update")
        }
        return package
    }

    /// Debian's `vmlinuz` is a bzImage whose payload is xz: the payload, decompressed, is the ELF kernel.
    private static func unpackKernel(from boot: String, to kernel: String, work: String) throws(TinyImageError) {
        let manager = FileManager.default
        guard let name = (try? manager.contentsOfDirectory(atPath: boot))?.first(where: { $0.hasPrefix("vmlinuz-") }),
            let bzImage = manager.contents(atPath: "\(boot)/\(name)")
        else { throw TinyImageError(.kernelUnavailable, "the kernel package has no /boot/vmlinuz-*") }
        guard let start = bzImage.range(of: Data([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) else {
            throw TinyImageError(.kernelUnavailable, "\(name) holds no xz-compressed kernel (Debian's amd64 kernels do)")
        }
        let payload = "\(work)/vmlinux.xz"
        guard manager.createFile(atPath: payload, contents: bzImage[start.lowerBound...]) else {
            throw TinyImageError(.buildFailed, "cannot write \(payload)")
        }
        // --single-stream: the payload is followed by the rest of the bzImage, which xz is told to ignore.
        try step("/usr/bin/xz", ["--decompress", "--single-stream", "--stdout", payload], outputFile: kernel)
        guard let handle = FileHandle(forReadingAtPath: kernel), let magic = try? handle.read(upToCount: 4), magic == Data([0x7f, 0x45, 0x4c, 0x46]) else {
            throw TinyImageError(.kernelUnavailable, "the kernel of \(name) did not unpack to an ELF file")
        }
        try? handle.close()
    }

    /// Whether an ELF64 file names a program interpreter (PT_INTERP): a dynamically linked one,
    /// which cannot run in an initramfs without its libraries.
    static func needsInterpreter(_ elf: Data) -> Bool {
        let bytes = [UInt8](elf.prefix(1 << 16))
        guard bytes.count >= 64, bytes[0..<4] == [0x7f, 0x45, 0x4c, 0x46], bytes[4] == 2 else { return true }  // not ELF64: not usable either
        func little(_ offset: Int, _ count: Int) -> Int {
            (0..<count).reduce(0) { $0 | Int(bytes[offset + $1]) << (8 * $1) }
        }
        let (table, size, count) = (little(32, 8), little(54, 2), little(56, 2))
        for index in 0..<count {
            let header = table + index * size
            guard header + 4 <= bytes.count else { return true }
            if little(header, 4) == 3 { return true }  // PT_INTERP
        }
        return false
    }

    /// The modules a virtio NIC needs, in the order they load (Debian builds virtio itself as modules).
    static let networkModules: [(name: String, path: String)] = [
        ("virtio_ring", "drivers/virtio/virtio_ring.ko"), ("virtio", "drivers/virtio/virtio.ko"),
        ("virtio_pci_modern_dev", "drivers/virtio/virtio_pci_modern_dev.ko"), ("virtio_pci_legacy_dev", "drivers/virtio/virtio_pci_legacy_dev.ko"),
        ("virtio_pci", "drivers/virtio/virtio_pci.ko"), ("failover", "net/core/failover.ko"), ("net_failover", "drivers/net/net_failover.ko"),
        ("virtio_net", "drivers/net/virtio_net.ko"),
        // For the VLAN proof (this host's kernel has no 8021q; the guest's does): bridges, 802.1Q, dummy.
        ("llc", "net/llc/llc.ko"), ("stp", "net/802/stp.ko"), ("bridge", "net/bridge/bridge.ko"), ("garp", "net/802/garp.ko"), ("mrp", "net/802/mrp.ko"),
        ("8021q", "net/8021q/8021q.ko"), ("dummy", "drivers/net/dummy.ko"),
        // Volumes: virtio disks hot-plugged into the running guest.
        ("virtio_blk", "drivers/block/virtio_blk.ko"),
    ]

    /// Modules packed into the image but not loaded at boot, for what this host's kernel lacks: the
    /// AoE initiator (a proof script loads `/lib/net/aoe.ko` to read a volume off the wire) and
    /// device-mapper (`/lib/net/dm_mod.ko`, for LVM).
    static let proofModules: [(name: String, path: String)] = [("aoe", "drivers/block/aoe/aoe.ko"), ("dm_mod", "drivers/md/dm-mod.ko")]

    /// Where an initramfs appended to the image's own puts a script for the guest to run once at
    /// boot, before the login prompt (`ramdisk(withProof:)`): how tests give a guest the kernel
    /// work this host cannot do (802.1Q VLANs, an AoE initiator).
    public static let proofScript = "/etc/stratus/proof.sh"

    /// iproute2's `ip` and the libraries it loads, copied from this host (iproute2 is installed
    /// for the node's own networking): the guest runs the same batches the reconciler does.
    static let iproute2 = "/usr/sbin/ip"

    /// `ip` and its libraries by path (from `ldd`), as they go into the initramfs.
    static func iproute2Files() throws(TinyImageError) -> [(path: String, contents: Data)] { try hostFiles([iproute2], package: "iproute2") }

    /// Programs of this host and the libraries they load (from `ldd`), by path, for an
    /// initramfs: a proof script runs them in the guest (`ramdisk(withProof:files:)`).
    public static func hostFiles(_ programs: [String], package: String) throws(TinyImageError) -> [(path: String, contents: Data)] {
        var paths: [String] = []
        for program in programs {
            paths.append(program)
            let listing = try step("/usr/bin/ldd", [program])
            for line in listing.split(separator: "\n") {
                // "libbpf.so.1 => /lib/x86_64-linux-gnu/libbpf.so.1 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
                let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                if let arrow = fields.firstIndex(of: "=>"), arrow + 1 < fields.count, fields[arrow + 1].hasPrefix("/") { paths.append(fields[arrow + 1]) }
                else if let first = fields.first, first.hasPrefix("/") { paths.append(first) }
            }
        }
        var seen: Set<String> = []
        return try paths.filter { seen.insert($0).inserted }.map { path throws(TinyImageError) in
            guard let contents = FileManager.default.contents(atPath: URL(fileURLWithPath: path).resolvingSymlinksInPath().path) else {
                throw TinyImageError(.toolMissing, "cannot read \(path) for the tiny image (apt-get install \(package))")
            }
            return (path, contents)
        }
    }

    /// The guest's whole userland: busybox, an `/init`, the files a login prompt reads, the NIC's
    /// modules and the DHCP client's script.
    static func initramfs(busybox: Data, modules: [(name: String, contents: Data)] = [], tools: [(path: String, contents: Data)] = []) -> Data {
        var archive = CPIOArchive()
        for directory in ["/bin", "/dev", "/etc", "/lib", "/lib/net", "/proc", "/root", "/sys", "/tmp"] { archive.directory(directory) }
        var made: Set<String> = ["/bin", "/dev", "/etc", "/lib", "/lib/net", "/proc", "/root", "/sys", "/tmp"]
        for tool in tools { archive.file(tool.path, contents: tool.contents, mode: 0o755, making: &made) }
        archive.characterDevice("/dev/console", major: 5, minor: 1)  // the kernel's console before devtmpfs is mounted
        archive.file("/bin/busybox", contents: busybox, mode: 0o755)
        archive.file("/init", contents: Data(initScript.utf8), mode: 0o755)
        archive.file("/etc/udhcpc.sh", contents: Data(dhcpScript.utf8), mode: 0o755)
        for module in modules { archive.file("/lib/net/\(module.name).ko", contents: module.contents) }
        archive.file("/etc/issue", contents: Data(issue.utf8))
        archive.file("/etc/passwd", contents: Data("root::0:0:root:/root:/bin/sh\n".utf8))
        archive.file("/etc/group", contents: Data("root:x:0:\n".utf8))
        return archive.finished()
    }

    /// PID 1. getty prints `/etc/issue` and `stratus-tiny login:` on the serial console, then
    /// waits for input; run again if it ever exits, since PID 1 ending panics the kernel.
    static let initScript = """
        #!/bin/busybox sh
        /bin/busybox mount -t proc proc /proc
        /bin/busybox mount -t sysfs sys /sys
        /bin/busybox mount -t devtmpfs dev /dev
        /bin/busybox --install -s /bin
        hostname stratus-tiny
        echo "\(banner) up after $(cut -d' ' -f1 /proc/uptime) s: Linux $(uname -r), busybox $(busybox | head -1 | cut -d' ' -f2)"
        for module in \(networkModules.map(\.name).joined(separator: " ")); do insmod /lib/net/$module.ko 2>/dev/null; done
        if [ -e /sys/class/net/eth0 ]; then
          # In the background, so the login prompt does not wait for the network.
          (
            ip link set lo up; ip link set eth0 up
            if udhcpc -i eth0 -q -n -t 10 -T 2 -s /etc/udhcpc.sh >/dev/null 2>&1; then
              echo "\(networkMarker) eth0 $(ip -4 addr show eth0 | grep -o 'inet [0-9./]*')"
              # nc, not wget: the static busybox's wget crashes resolving even a numeric address here.
              answer=$(printf 'GET /latest/meta-data/instance-id HTTP/1.0\\r\\nHost: 169.254.169.254\\r\\n\\r\\n' | nc -w 10 169.254.169.254 80)
              echo "\(networkMarker) instance-id $(echo "$answer" | tail -n 1)"
            else
              echo "\(networkMarker) no DHCP lease on eth0"
            fi
          ) &
        fi
        # Volumes: each virtio disk that appears (hot-plugged or not) is named with its serial and
        # size, once, and again when its size changes.
        (
          seen=""
          while true; do
            for disk in /sys/block/vd*; do
              [ -e "$disk/serial" ] || continue
              name=${disk##*/}; serial=$(cat $disk/serial); size=$(cat $disk/size)
              [ -n "$serial" ] || continue
              case " $seen " in *" $name:$serial:$size "*) continue ;; esac
              seen="$seen $name:$serial:$size"
              echo "\(diskMarker) $name serial $serial sectors $size"
            done
            sleep 1
          done
        ) &
        if [ -f \(proofScript) ]; then sh \(proofScript); fi
        while true; do getty 115200 ttyS0 vt100; sleep 1; done

        """

    /// What the guest prints on its console about its NIC: its DHCP address, then the
    /// instance-id the metadata service at 169.254.169.254 gave it.
    public static let networkMarker = "stratus-net:"
    /// What the guest prints for each virtio disk with a serial it sees: `stratus-disk: vdb serial vol-… sectors N`.
    public static let diskMarker = "stratus-disk:"

    /// busybox udhcpc's script: the lease's address and default route on the interface.
    static let dhcpScript = """
        #!/bin/busybox sh
        case "$1" in
          bound|renew)
            ip addr flush dev "$interface"
            ip addr add "$ip/${mask:-24}" dev "$interface"
            [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
            ;;
        esac
        exit 0

        """

    /// getty expands `\\r` (kernel release) and `\\n` (host name).
    static let issue = "\n\(banner): Debian kernel \\r, busybox userland (\\n)\n\n"

    /// The image's initramfs followed by one holding `script` at `proofScript` (and any `files`):
    /// Linux unpacks concatenated archives in order, so the guest boots as usual and runs it.
    public func ramdisk(withProof script: String, files: [(path: String, contents: Data)] = []) throws -> Data {
        var extra = CPIOArchive()
        extra.directory("/etc/stratus")
        extra.file(Self.proofScript, contents: Data(script.utf8), mode: 0o755)
        var made: Set<String> = ["/etc/stratus"]
        for file in files { extra.file(file.path, contents: file.contents, mode: 0o755, making: &made) }
        var initrd = try Data(contentsOf: URL(fileURLWithPath: ramdisk))
        initrd.append(extra.finished())
        return initrd
    }

    private static let recipeVersion = 13
    private static var recipeDigest: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "\(recipeVersion)\n\(initScript)\n\(issue)\n\(dhcpScript)\n\((networkModules + proofModules).map(\.path))".utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return String(hash, radix: 16)
    }

    private static func stampPath(_ directory: String) -> String { (directory as NSString).appendingPathComponent("tiny-image.json") }

    /// Runs one build step; a failure says which and what it printed.
    @discardableResult
    private static func step(_ tool: String, _ arguments: [String], outputFile: String? = nil) throws(TinyImageError) -> String {
        let child: ChildProcess
        do {
            child = try ChildProcess.run(tool, arguments, outputFile: outputFile)
        } catch {
            throw TinyImageError(.toolMissing, "cannot run \(tool): \(error)")
        }
        guard child.status == 0 else {
            let shown = arguments.first == "-c" ? arguments.dropFirst().first ?? "" : arguments.joined(separator: " ")
            throw TinyImageError(.buildFailed, "\(tool) \(shown) failed (exit \(child.status)): \(child.errors.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return child.output
    }
}

/// Why the tiny image could not be built, with what to do about it.
public struct TinyImageError: Error, Sendable, CustomStringConvertible {
    enum Code: Sendable {
        /// A tool or package the build needs is not installed.
        case toolMissing
        /// apt offers no usable kernel package.
        case kernelUnavailable
        /// A step failed or a file could not be written.
        case buildFailed
    }

    let code: Code
    public let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// Whether this machine lacks what the build needs (as opposed to a failed step).
    public var isUnavailable: Bool { code != .buildFailed }

    public var description: String { message }
}

extension FileManager {
    fileprivate func createDirectory(atPathOrThrow path: String) throws(TinyImageError) {
        do {
            try createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw TinyImageError(.buildFailed, "cannot create \(path): \(error)")
        }
    }
}
