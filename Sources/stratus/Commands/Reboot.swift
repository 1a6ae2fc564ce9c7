import ArgumentParser
import StratusModel

extension Stratus {
    /// `stratus reboot instance NAME`: asks the guest to reboot.
    struct Reboot: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Reboot an instance (an ACPI reboot request to the guest).",
            discussion: """
                Talks to the `stratus serve` that runs the instance: the one named by --server, or the one \
                running on the data directory.

                Example: stratus reboot instance web-1 -p acme
                """
        )

        @Argument(help: "instance (the only kind that reboots).")
        var kind: String

        @Argument(help: "The instance's name or id.")
        var name: String

        @Option(name: .shortAndLong, help: "The project.")
        var project: String?

        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            try await reportingErrors {
                guard try parseKind(kind) == .instance else { throw CLIError("only instances reboot; got \(kind)") }
                try await storeOptions.openBackend().reboot(name: name, project: project)
                Terminal.standardOutput.line("Instance \(project.map { "\($0)/" } ?? "")\(name) rebooting")
            }
        }
    }
}
