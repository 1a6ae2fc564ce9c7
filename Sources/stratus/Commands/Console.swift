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
                Reads the log the controller's node keeps under DATA/instances/<id>/console.log, so run it \
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
            try await reportingErrors {
                let text = try await storeOptions.openBackend().console(name: name, project: project)
                var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
                if let tail, lines.count > tail { lines = Array(lines.suffix(tail)) }
                Terminal.standardOutput.write(lines.joined(separator: "\n"))
                if !text.hasSuffix("\n") { Terminal.standardOutput.line() }
            }
        }
    }
}
