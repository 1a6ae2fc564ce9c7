import Foundation
import StratusTestSupport
import Testing

@testable import StratusCompute

/// `make run`'s start-up path: `stratus image build-tiny`, then `stratus serve` with the Makefile's
/// own flags (real guests on libvirt's embedded QEMU), on a temporary data directory and free ports.
@Suite(.serialized) struct MakeRunTests {
    /// A variable of the Makefile (`NAME := words`), split at spaces.
    static func makefileFlags(_ name: String) throws -> [String] {
        let makefile = try String(contentsOfFile: (CLI.repositoryRoot as NSString).appendingPathComponent("Makefile"), encoding: .utf8)
        let prefix = "\(name) := "
        let line = try #require(makefile.split(separator: "\n").first { $0.hasPrefix(prefix) }, "the Makefile defines \(name)")
        #expect(makefile.contains("\t$(BIN) image build-tiny --data-dir $(DATA) $(IMAGE_FLAGS)\n\t$(BIN) serve --data-dir $(DATA) $(SERVE_FLAGS)\n"),
                "make run builds the image and puts it into the object store with IMAGE_FLAGS, then serves with SERVE_FLAGS")
        return line.dropFirst(prefix.count).split(separator: " ").map(String.init)
    }

    /// What `make run` passes to `stratus serve` after `--data-dir`, read from the Makefile itself.
    static func makefileServeFlags() throws -> [String] { try makefileFlags("SERVE_FLAGS") }

    /// A shell line as a user pastes it (the next steps serve printed) in `directory`, with no Stratus or AWS variables of the test's own.
    static func shell(_ line: String, in directory: String) async throws -> CLI.Result {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result {
                    let process = Process()
                    process.executableURL = URL(fileURLWithPath: "/bin/sh")
                    process.arguments = ["-c", line]
                    process.currentDirectoryURL = URL(fileURLWithPath: directory)
                    var environment = ProcessInfo.processInfo.environment
                    for name in environment.keys where name.hasPrefix("STRATUS_") || name.hasPrefix("AWS_") || name.hasPrefix("EC2_") { environment[name] = nil }
                    environment["NO_COLOR"] = "1"
                    process.environment = environment
                    let out = Pipe()
                    let err = Pipe()
                    process.standardOutput = out
                    process.standardError = err
                    try process.run()
                    let stdout = out.fileHandleForReading.readToEndRetrying()
                    let stderr = err.fileHandleForReading.readToEndRetrying()
                    process.waitUntilExit()
                    return CLI.Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
                })
            }
        }
    }

    /// QEMU processes whose command line names `path` (the test's data directory): by PID, to stop any left behind.
    static func qemuProcesses(naming path: String) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> pid_t? in
            guard let pid = pid_t(entry), let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return nil }
            let arguments = String(decoding: data, as: UTF8.self).split(separator: "\0")
            guard arguments.first?.contains("qemu-system") == true, arguments.contains(where: { $0.contains(path) }) else { return nil }
            return pid
        }
    }

    /// Stops a serve that ran embedded QEMU guests: SIGTERM (serve stops its guests on the way
    /// out), then any QEMU process still naming the data directory is killed by PID and reported.
    static func stopEmbedded(_ server: Server, _ cli: CLI) {
        server.kill(SIGTERM)
        let left = qemuProcesses(naming: cli.dataDirectory)
        for pid in left { kill(pid, SIGKILL) }
        #expect(left.isEmpty, "QEMU processes left after serve stopped: \(left)")
        if let alias = EmbeddedQEMU.alias(of: "\(cli.dataDirectory)/libvirt") { try? FileManager.default.removeItem(atPath: alias) }
    }

    @Test("make run's start-up boots web-1 on real QEMU: its console shows the kernel's boot, the banner and a login prompt; the three printed next steps work; no Unschedulable warning")
    func makeRun() async throws {
        let image: TinyImage
        do {
            image = try await TinyImage.build().image
        } catch {
            Issue.record("skipped: the tiny image cannot be built on this machine, so no guest can boot: \(error)")
            return
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64") else {
            Issue.record("skipped: qemu-system-x86_64 is not installed (make install-deps), so no guest can boot")
            return
        }
        let kvm = KVMProbe.decide(.host())
        let expectedType = kvm.usable ? "kvm" : "qemu"
        print("MakeRunTests: guests run as <domain type='\(expectedType)'>: \(kvm.reason)\(kvm.usable ? "" : "; KVM is skipped, TCG is used")")

        let cli = try CLI()
        // As make run runs it (the CLI's STRATUS_DATA is the data directory serve gets below).
        let imageFlags = try Self.makefileFlags("IMAGE_FLAGS")
        #expect(imageFlags == ["--upload", "s3://images/tiny/", "-p", "acme"], "\(imageFlags)")
        let built = try await cli.run(["image", "build-tiny"] + imageFlags)
        #expect(built.status == 0 && built.stdout.contains("up to date") && built.stdout.contains(image.kernel), "\(built.stdout)\(built.stderr)")
        for key in ["vmlinux", "initrd.cpio", "disk.raw"] {
            #expect(built.stdout.contains("stored s3://images/tiny/\(key) ("), "build-tiny put \(key) into the object store: \(built.stdout)")
        }
        let again = try await cli.run(["image", "build-tiny"] + imageFlags)
        #expect(again.status == 0 && again.stdout.contains("s3://images/tiny/vmlinux is up to date"), "a second make run writes nothing again: \(again.stdout)\(again.stderr)")
        let taken = try await cli.run("image", "build-tiny", "--upload", "s3://images/other/", "-p", "zeta")
        #expect(taken.status == 1 && taken.stderr.contains("bucket images belongs to project acme, not zeta"), "another project cannot write into acme's bucket: \(taken.stderr)")
        let images = try String(contentsOfFile: (CLI.repositoryRoot as NSString).appendingPathComponent("examples/images.yaml"), encoding: .utf8)
        for field in ["source: s3://images/tiny/disk.raw", "format: raw", "kernel: s3://images/tiny/vmlinux", "ramdisk: s3://images/tiny/initrd.cpio", "cmdline: \(TinyImage.cmdline)"] {
            #expect(images.contains(field), "examples/images.yaml names the tiny image in the object store: \(field)")
        }

        // The machine is shared: one guest at a time. web-2 and db-1 are applied stopped; make run boots all three.
        let examples = try cli.copyExamples(objectStoreImage: true)
        let documents = try cli.read("examples/instances.yaml").components(separatedBy: "---\n").map { document in
            ["name: web-2\n", "name: db-1\n"].contains(where: document.contains) ? document + "  powerState: stopped\n" : document
        }
        try cli.write("examples/instances.yaml", documents.joined(separator: "---\n"))
        print("MakeRunTests: web-2 and db-1 are applied with powerState: stopped, so that this test runs one guest (web-1) on the shared machine; make run boots all three")

        let flags = try Self.makefileServeFlags()
        #expect(flags.contains("--hypervisor") && flags.contains("embed") && flags.contains("examples/"), "\(flags)")
        let started = ContinuousClock.now
        // As make run names .stratus: relative to where serve runs (CLI's data directory is ../data from its work directory).
        let server = try Server(cli: cli, arguments: flags.map { $0 == "examples/" ? examples : $0 } + ["--api-port", "0"], dataDirectory: "../data")
        var stopped = false
        func stop() {
            guard !stopped else { return }
            stopped = true
            Self.stopEmbedded(server, cli)
        }
        do {
            try await scenario()
        } catch {
            stop()
            throw error
        }
        stop()

        func scenario() async throws {
            _ = try await server.url(cli: cli, timeout: .seconds(120))
            let log = { (try? String(contentsOfFile: server.log, encoding: .utf8)) ?? "" }
            var steps: [String] = []
            var dashboard = ""
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                let lines = log().split(separator: "\n").map(String.init)
                if let header = lines.firstIndex(where: { $0.contains("Next, in another terminal:") }), lines.count >= header + 5 {
                    steps = lines[(header + 1)...(header + 3)].map { $0.trimmingCharacters(in: .whitespaces) }
                    dashboard = lines[header + 4].trimmingCharacters(in: .whitespaces)
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            let data = "--data-dir ../data"
            #expect(steps == [
                "\(CLI.binary) get instances -p acme \(data)",
                "\(CLI.binary) console web-1 -p acme \(data)",
                "eval \"$(\(CLI.binary) credentials alice -p acme \(data))\" && aws --endpoint-url \"$EC2_URL\" ec2 describe-instances",
            ], "the next steps serve printed: \(log().suffix(3000))")
            guard steps.count == 3 else { return }
            let link = try await Self.shell(dashboard, in: cli.workDirectory)
            #expect(dashboard.hasPrefix("\(CLI.binary) dashboard \(data)") && link.status == 0 && link.stdout.contains("/ui/login?token="),
                    "the fourth step prints a dashboard sign-in link: \(dashboard)\n\(link.stdout)\(link.stderr)")

            let listed = try await Self.shell(steps[0], in: cli.workDirectory)
            #expect(listed.status == 0 && ["web-1", "web-2", "db-1"].allSatisfy(listed.stdout.contains), "\(listed.stdout)\(listed.stderr)")

            var console = ""
            var lastError = ""
            let bootDeadline = ContinuousClock.now + .seconds(120)
            while ContinuousClock.now < bootDeadline {
                let result = try await Self.shell(steps[1], in: cli.workDirectory)
                console = result.stdout
                lastError = result.stderr
                if result.status == 0 && console.contains(TinyImage.banner) && console.contains("login:") { break }
                try await Task.sleep(for: .milliseconds(250))
            }
            let took = ContinuousClock.now - started
            #expect(console.contains("Linux version"), "the kernel's boot messages: \(console.suffix(2000))\(lastError)")
            #expect(console.contains(TinyImage.banner) && console.contains("stratus-tiny login:"), "banner and login prompt: \(console.suffix(2000))")
            print("MakeRunTests: web-1's login prompt was on its console \(took.formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 1)))) after serve started (\(expectedType))")

            if (try? await Self.shell("command -v aws", in: cli.workDirectory))?.status == 0 {
                let described = try await Self.shell(steps[2] + " --output json", in: cli.workDirectory)
                #expect(described.status == 0 && described.stdout.contains("\"InstanceId\": \"i-") && described.stdout.contains("\"Name\": \"running\""), "\(described.stdout)\(described.stderr)")
            } else {
                print("MakeRunTests: skipped running the third next step: awscli (aws) is not installed (make install-deps installs it)")
            }

            let events = try await cli.run("events", "-o", "json")
            #expect(events.status == 0 && events.stdout.contains("web-1"), "\(events.stderr)")
            #expect(!events.stdout.contains("Unschedulable") && !events.stdout.contains("capacity not reported"), "\(events.stdout)")

            let described = try await cli.run("get", "images", "-p", "acme", "-o", "json")
            #expect(described.stdout.contains("\"Available\"") && described.stdout.contains("in the object store"), "the examples' image is Available from the object store: \(described.stdout)")
            let md5 = try FileManager.default.contentsOfDirectory(atPath: "\(cli.dataDirectory)/images").filter { $0.count == 32 }
            #expect(md5.count == 3, "the node cached the kernel, ramdisk and disk from the object store by MD5: \(md5)")

            let node = try await cli.run("get", "nodes", "-o", "json")
            #expect(node.stdout.contains("\"domainType\" : \"\(expectedType)\"") || node.stdout.contains("\"domainType\": \"\(expectedType)\""), "\(node.stdout)")
        }
    }
}
