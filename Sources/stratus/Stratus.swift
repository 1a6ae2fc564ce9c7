import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import StratusTelemetry

/// The `stratus` command: thin wrappers around the library, which does the work.
@main
struct Stratus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stratus",
        abstract: "A declarative cloud controller: EC2 and S3 APIs, libvirt compute, AoE volumes, VLANs, LDAP.",
        discussion: """
            Resources are YAML manifests (apiVersion stratus/v1). `apply` records them as desired state, \
            `diff` shows what would change, and `serve` runs the controller that makes the world match.

            Examples:
              stratus apply -f examples/               record the example project
              stratus diff -f examples/ -o json        what would change, for CI (exit 2)
              stratus get instances -p acme -o wide    list instances
              stratus get instances -A                 in every project you may see
              stratus describe instance web-1 -p acme  spec, status, conditions, events
              stratus apply -f examples/ --prune --set demo   delete what was dropped

            The data directory is ./.stratus unless --data-dir or STRATUS_DATA says otherwise.
            """,
        version: StratusBuild.version,
        subcommands: [Apply.self, Diff.self, Plan.self, Validate.self, Schema.self, Get.self, Describe.self, Delete.self, Events.self, Console.self, Reboot.self, Credentials.self, Image.self, Serve.self, Agent.self, Cordon.self, Uncordon.self, Drain.self, Top.self, Dashboard.self]
    )

    /// Runs the command; usage errors exit 1 like every other error (2 is reserved for `diff`'s "differences").
    static func main() async {
        // Swift concurrency's jobs run on NIO's event loops (one thread per core), before any job
        // is enqueued: a request's handler then runs on the thread that read it, without a hop
        // between NIO's threads and the cooperative pool for every request (small S3 GETs: about
        // 1.3× as many per second; BENCHMARKS.md). Blocking work stays off these threads
        // (ChildProcess.offPool, libvirt's own queue), as it already had to stay off the pool.
        _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            Terminal.standardOutput.flush()
            Terminal.standardError.flush()
        } catch {
            Terminal.standardOutput.flush()
            Terminal.standardError.flush()
            let code = exitCode(for: error)
            if code.rawValue == 64 {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(1)
            }
            exit(withError: error)
        }
    }
}
