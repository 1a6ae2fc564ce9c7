import Foundation
import StratusModel
import Testing

@testable import StratusCompute

/// The parts of the tiny image builder that run without downloading a kernel.
@Suite struct TinyImageTests {
    @Test("the initramfs is a newc archive that busybox cpio lists with /init, busybox and the console device")
    func initramfsLists() throws {
        guard FileManager.default.isExecutableFile(atPath: "/bin/busybox") else {
            Issue.record("/bin/busybox is missing (busybox-static; make install-deps): cannot read the archive back")
            return
        }
        let directory = NSTemporaryDirectory() + "stratus-cpio-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let archive = "\(directory)/initrd.cpio"
        let busybox = Data("not really busybox, odd length".utf8)
        try TinyImage.initramfs(busybox: busybox).write(to: URL(fileURLWithPath: archive))
        let listing = try ChildProcess.run("/bin/sh", ["-c", "/bin/busybox cpio -t -v < \"$1\"", "sh", archive])
        #expect(listing.status == 0, "\(listing.errors)")
        let lines = listing.output.split(separator: "\n")
        let names = Set(lines.compactMap { $0.split(separator: " ").last.map(String.init) })
        #expect(names.isSuperset(of: ["init", "bin/busybox", "dev/console", "etc/issue", "proc", "sys"]), "\(listing.output)")
        #expect(lines.contains { $0.hasPrefix("-rwxr-xr-x") && $0.hasSuffix(" init") }, "/init is executable: \(listing.output)")
        #expect(lines.contains { $0.hasPrefix("crw-------") && $0.hasSuffix(" dev/console") }, "\(listing.output)")
        // Extracted, the files hold what was written (the padding after odd lengths is right).
        let extract = try ChildProcess.run("/bin/sh", ["-c", "cd \"$1\" && /bin/busybox cpio -i -d < initrd.cpio 2>&1", "sh", directory])
        #expect(extract.status == 0, "\(extract.output)")
        #expect(FileManager.default.contents(atPath: "\(directory)/bin/busybox") == busybox)
        #expect(try String(contentsOfFile: "\(directory)/init", encoding: .utf8) == TinyImage.initScript)
    }

    @Test("a static busybox is accepted and a dynamically linked program is refused, by its ELF program headers")
    func staticBusybox() throws {
        let dynamic = try #require(FileManager.default.contents(atPath: "/bin/sh"))
        #expect(TinyImage.needsInterpreter(dynamic), "/bin/sh is dynamically linked")
        #expect(TinyImage.needsInterpreter(Data("#!/bin/sh\n".utf8)), "not ELF")
        guard let busybox = FileManager.default.contents(atPath: "/bin/busybox") else {
            Issue.record("/bin/busybox is missing (busybox-static; make install-deps): only the refusal was checked")
            return
        }
        #expect(!TinyImage.needsInterpreter(busybox), "Debian's busybox-static has no PT_INTERP (though it holds the text ld-linux)")
    }

    @Test("the init script prints the banner before it starts getty on the serial console")
    func initScript() {
        let script = TinyImage.initScript
        let banner = script.range(of: TinyImage.banner)
        let getty = script.range(of: "getty 115200 ttyS0")
        #expect(script.hasPrefix("#!/bin/busybox sh\n"))
        #expect(banner != nil && getty != nil && banner!.lowerBound < getty!.lowerBound)
        #expect(TinyImage.cmdline.contains("console=ttyS0"), "the console the init script talks to")
    }
}
