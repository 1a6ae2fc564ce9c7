import ArgumentParser
import StratusModel
import StratusStore

extension Stratus {
    /// `stratus diff`: what `apply` would change; the exit code tells a CI job.
    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what applying the manifests would change. Exit 0: in sync; 2: differences; 1: error.",
            discussion: """
                Compares the files with the store: resources to create, to update (with field-level changes
                such as `spec.instanceType: m1.small → m1.medium`), to delete (with --prune) and unchanged.
                Defaults are filled in before comparing, so they never show as changes.

                -o json prints a stable ChangeReport (documented in README.md) for machines.

                Examples:
                  stratus diff -f examples/ && echo in sync
                  stratus diff -f prod/ --prune --set prod -o json
                """
        )

        @OptionGroup var files: FileOptions
        @OptionGroup var storeOptions: StoreOptions

        @Option(name: .customLong("set"), help: "The apply set to compare against (for --prune and ownership).")
        var applySet = "default"

        @Flag(help: "Also show deletions that `apply --prune` would make.")
        var prune = false

        @Flag(help: "Do not refuse a prune plan over the deletion budget; just show it.")
        var allowMassDelete = false

        @Option(name: .shortAndLong, help: "Output format: text or json.")
        var output: ChangeFormat = .text

        @Option(help: "Color: auto, always or never.")
        var color: ColorMode = .auto

        func validate() throws {
            if files.files.isEmpty { throw ValidationError("give at least one -f FILE|DIR|- (see --help)") }
        }

        func run() async throws {
            let backend = try reportingErrors { try storeOptions.openBackend() }
            let plan = try await reportingErrors {
                try await backend.plan(files, options: ApplyOptions(applySet: applySet, prune: prune, allowMassDelete: allowMassDelete), commit: false)
            }
            let out = Terminal.standardOutput
            switch output {
            case .json:
                out.line(try ChangeReport(plan: plan, applySet: applySet, dryRun: true, includeUnchanged: false).json())
            case .text:
                ChangePrinter(out: out, paint: Paint(enabled: out.colors(color))).printDiff(plan)
            }
            if plan.hasChanges { throw ExitCode(2) }
        }
    }
}
