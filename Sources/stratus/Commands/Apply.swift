import ArgumentParser
import StratusModel
import StratusStore

extension Stratus {
    /// `stratus apply`: records manifests as desired state, all or nothing.
    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record manifests as the desired state (one transaction: all or nothing).",
            discussion: """
                Every document is parsed and checked (types, names, CIDRs, references within the files and
                the store) before anything is written; one error means nothing is applied.

                Resources join an apply set (--set, default "default"). With --prune, members of that set
                that the files no longer contain are deleted; at most 10 and at most half of the set unless
                --allow-mass-delete, and never one annotated stratus/protect: "true".

                Examples:
                  stratus apply -f examples/
                  stratus apply -f examples/ --dry-run
                  cat web.yaml | stratus apply -f - -p acme
                  stratus apply -f prod/ --prune --set prod
                """
        )

        @OptionGroup var files: FileOptions
        @OptionGroup var storeOptions: StoreOptions

        @Option(name: .customLong("set"), help: "The apply set the resources join; --prune only deletes its members.")
        var applySet = "default"

        @Flag(help: "Delete members of the apply set that the files no longer contain.")
        var prune = false

        @Flag(help: "Allow a prune to delete more than 10 resources or more than half of the set.")
        var allowMassDelete = false

        @Flag(help: "Show what would change; change nothing.")
        var dryRun = false

        @Option(name: .shortAndLong, help: "Output format: text or json.")
        var output: ChangeFormat = .text

        @Option(help: "Color: auto, always or never.")
        var color: ColorMode = .auto

        func validate() throws {
            if files.files.isEmpty { throw ValidationError("give at least one -f FILE|DIR|- (see --help)") }
            if let problem = NameRules.problem(with: applySet, dotted: true) { throw ValidationError("--set: \(problem)") }
        }

        func run() async throws {
            try reportingErrors {
                let store = try storeOptions.openStore()
                let documents = try files.load(cache: store)
                let options = ApplyOptions(applySet: applySet, prune: prune, allowMassDelete: allowMassDelete)
                let plan = dryRun ? try store.plan(documents, options: options) : try store.apply(documents, options: options)
                let out = Terminal.standardOutput
                switch output {
                case .json:
                    out.line(try ChangeReport(plan: plan, applySet: applySet, dryRun: dryRun, includeUnchanged: true).json())
                case .text:
                    ChangePrinter(out: out, paint: Paint(enabled: out.colors(color))).printApplied(plan, applySet: applySet, dryRun: dryRun)
                }
            }
        }
    }
}
