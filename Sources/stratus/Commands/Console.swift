import ArgumentParser
import Foundation
import StratusModel
import StratusStore

extension Stratus {
    /// `stratus console`: an instance's serial console log.
    struct Console: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print an instance's serial console log (what the guest wrote to ttyS0).",
            discussion: """
                Reads the log the controller's node keeps under DATA/instances/<id>/console.log, so run it
                against the data directory of the `stratus serve` that runs the instance.

                Example: stratus console web-1 -p acme --tail 50
                """
        )

        @Argument(help: "The instance's name or id (i-…).")
        var name: String

        @Option(name: .shortAndLong, help: "The project.")
        var project: String?

        @Option(help: "Only the last N lines.")
        var tail: Int?

        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            try reportingErrors {
                let store = try storeOptions.openStore()
                let instance = try lookup(store, kind: .instance, name: name, project: project)
                guard let id = instance.metadata.id else { throw CLIError("\(instance.key) has no id") }
                let path = "\(storeOptions.resolvedDataDir)/instances/\(id)/console.log"
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                    throw CLIError("no console log for \(instance.key) at \(path) (status: \(instance.displayPhase)): the guest has not started on this node yet, it runs on another node, or the hypervisor keeps no console (test:///)")
                }
                var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
                if let tail, lines.count > tail { lines = Array(lines.suffix(tail)) }
                Terminal.standardOutput.write(lines.joined(separator: "\n"))
                if !text.hasSuffix("\n") { Terminal.standardOutput.line() }
            }
        }
    }
}
