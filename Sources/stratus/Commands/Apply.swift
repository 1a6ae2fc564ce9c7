import ArgumentParser
import Foundation
import StratusModel
import StratusStore

extension Stratus {
    /// `stratus apply`: records manifests as desired state, all or nothing.
    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record manifests as the desired state (one transaction: all or nothing).",
            discussion: """
                Every document is parsed and checked (types, names, CIDRs, references within the files and \
                the store) before anything is written; one error means nothing is applied.

                Resources join an apply set (--set, default "default"). With --prune, members of that set \
                that the files no longer contain are deleted; at most 10 and at most half of the set unless \
                --allow-mass-delete, and never one annotated stratus/protect: "true".

                Given a plan saved by `stratus plan`, applies exactly the files it holds with its options, \
                or nothing if the store has changed since the plan was made (exit 1).

                Examples:
                  stratus apply -f examples/
                  stratus apply -f examples/ --dry-run
                  stratus apply plan.json
                  cat web.yaml | stratus apply -f - -p acme
                  stratus apply -f prod/ --prune --set prod
                """
        )

        @Argument(help: ArgumentHelp("A plan saved by `stratus plan -o FILE`, instead of -f.", valueName: "plan-file"))
        var planFile: String?

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

        @Flag(help: "After applying, wait until every resource is Ready (needs `stratus serve` on this data directory).")
        var wait = false

        @Option(help: "How long --wait waits: 90s, 5m, 1h.")
        var timeout = "5m"

        @Option(help: "Color: auto, always or never.")
        var color: ColorMode = .auto

        func validate() throws {
            if let planFile {
                if !files.files.isEmpty { throw ValidationError("give either a saved plan (\(planFile)) or -f files, not both") }
                if prune || allowMassDelete || applySet != "default" || files.project != nil {
                    throw ValidationError("a saved plan carries its own --set, --prune and -p; apply it without them")
                }
            } else if files.files.isEmpty {
                throw ValidationError("give at least one -f FILE|DIR|- or a saved plan (see --help)")
            }
            if let problem = NameRules.problem(with: applySet, dotted: true) { throw ValidationError("--set: \(problem)") }
            if WaitProgress.parseDuration(timeout) == nil { throw ValidationError("--timeout: expected a duration like 90s, 5m or 1h, got \"\(timeout)\"") }
            if wait && dryRun { throw ValidationError("--wait has nothing to wait for with --dry-run") }
        }

        func run() async throws {
            let backend = try reportingErrors { try storeOptions.openBackend() }
            var applySet = applySet
            let plan: ApplyPlan
            if let planFile {
                let saved = try SavedPlan.read(from: planFile)
                applySet = saved.applySet
                var options = ApplyOptions(applySet: saved.applySet, prune: saved.prune, allowMassDelete: saved.allowMassDelete)
                options.expectVersion = saved.storeVersion
                let sources = saved.sources.map { ManifestSource(name: $0.name, data: Data($0.text.utf8)) }
                plan = try await reportingErrors { try await backend.plan(sources: sources, project: saved.project, options: options, commit: !dryRun) }
            } else {
                let options = ApplyOptions(applySet: applySet, prune: prune, allowMassDelete: allowMassDelete)
                plan = try await reportingErrors { try await backend.plan(files, options: options, commit: !dryRun) }
            }
            let out = Terminal.standardOutput
            switch output {
            case .json:
                out.line(try ChangeReport(plan: plan, applySet: applySet, dryRun: dryRun, includeUnchanged: true).json())
            case .text:
                ChangePrinter(out: out, paint: Paint(enabled: out.colors(color))).printApplied(plan, applySet: applySet, dryRun: dryRun)
            }
            guard wait else { return }
            out.flush()
            let keys = plan.changes.filter { $0.action != .delete }.map(\.key)
            let progress = WaitProgress(backend: backend, keys: keys, timeout: WaitProgress.parseDuration(timeout)!, out: out, paint: Paint(enabled: out.colors(color)))
            let late = try await reportingErrors { try await progress.run() }
            guard late.isEmpty else {
                for (key, why) in late { Terminal.standardError.line("error: \(key) not ready after \(timeout): \(why)") }
                let target = storeOptions.resolvedServer ?? storeOptions.resolvedDataDir
                Terminal.standardError.line("\(late.count) of \(keys.count) resources not ready; is `stratus serve` running on \(target)?")
                throw ExitCode.failure
            }
            out.line("All \(keys.count) resources ready.")
        }
    }
}
