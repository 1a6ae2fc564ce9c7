import Foundation
import ArgumentParser
import StratusModel
import StratusAPI
import StratusStore

extension Stratus {
    /// `stratus diff`: what `apply` would change; the exit code tells a CI job.
    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what applying the manifests would change. Exit 0: in sync; 2: differences; 1: error.",
            discussion: """
                Compares the files with the store: resources to create, to update (with field-level changes \
                such as `spec.instanceType: m1.small → m1.medium`), to delete (with --prune) and unchanged. \
                Defaults are filled in before comparing, so they never show as changes.

                Resources made through the EC2 API belong to no apply set, so they are listed as "Outside this \
                set" and not compared: those of the projects the files touch, or with -A those of every \
                project you may see. -A widens only that listing; the plan is always the files'.

                -o json prints a stable ChangeReport (documented in README.md) for machines. -o github \
                prints GitHub Actions annotations (::error file=…,line=…::) for errors and a Markdown summary \
                of the changes, also appended to $GITHUB_STEP_SUMMARY when the job has one.

                Examples:
                  stratus diff -f examples/ && echo in sync
                  stratus diff -f prod/ --prune --set prod -o json
                  stratus diff -f prod/ -A             also what the EC2 API made anywhere
                  stratus diff -f prod/ -o github      in a GitHub Actions job
                  stratus diff --drift                 domains that differ from the store
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

        @Flag(help: "Compare the store with the world instead (libvirt domains): exit 2 on drift. Needs the running server.")
        var drift = false

        @Flag(name: [.customShort("A"), .long], help: "List what the EC2 API made in every project you may see, not only in the projects of the files.")
        var allProjects = false

        @Option(name: .shortAndLong, help: "Output format: text, json or github.")
        var output: CheckFormat = .text

        @Option(help: "Color: auto, always or never.")
        var color: ColorMode = .auto

        func validate() throws {
            if files.files.isEmpty && !drift { throw ValidationError("give at least one -f FILE|DIR|- or --drift (see --help)") }
            if drift && !files.files.isEmpty { throw ValidationError("--drift compares the store with the world; run it without -f") }
            if drift && allProjects { throw ValidationError("--drift always covers every project; run it without -A") }
            try validateProjectScope(project: files.project, allProjects: allProjects)
        }

        func run() async throws {
            if drift { return try await runDrift() }
            let backend = try reportingErrors { try storeOptions.openBackend() }
            let plan: ApplyPlan
            do {
                plan = try await backend.plan(files, options: ApplyOptions(applySet: applySet, prune: prune, allowMassDelete: allowMassDelete), commit: false)
            } catch let errors as ManifestErrors where output == .github {
                for error in errors.errors { Terminal.standardOutput.line(GitHubOutput.annotation(error)) }
                throw report(errors)
            } catch let error as StoreError where output == .github {
                Terminal.standardOutput.line("::error::\(GitHubOutput.message(error.message))")
                throw report(error)
            } catch {
                throw report(error)
            }
            // Resources made through the EC2 API belong to no set: say so, do not compare them. Those of
            // the files' projects, or with -A (nil) of every project the caller may see.
            let projects = allProjects ? nil : Set(plan.changes.lazy.map(\.key.project).filter { !$0.isEmpty })
            let outside = try await reportingErrors { try await backend.madeThroughAPI(projects: projects) }
            let out = Terminal.standardOutput
            switch output {
            case .github:
                let summary = GitHubOutput.summary(plan, applySet: applySet)
                out.line(summary)
                GitHubOutput.appendToStepSummary(summary)
                if plan.hasChanges { out.line("::notice title=stratus diff::\(plan.count(.create)) to create, \(plan.count(.update)) to update, \(plan.count(.delete)) to delete") }
            case .json:
                var report = ChangeReport(plan: plan, applySet: applySet, dryRun: true, includeUnchanged: false)
                report.outsideSet = outside.isEmpty ? nil : outside.map { .init(kind: $0.key.kind.rawValue, project: $0.key.project, name: $0.key.name, id: $0.id, manager: "api") }
                out.line(try report.json())
            case .text:
                ChangePrinter(out: out, paint: Paint(enabled: out.colors(color))).printDiff(plan)
                if !outside.isEmpty {
                    let names = outside.prefix(10).map { $0.key.description + ($0.id.map { " (\($0))" } ?? "") }.joined(separator: ", ")
                    out.line("Outside this set: \(outside.count) resource\(outside.count == 1 ? "" : "s") made through the EC2 API, not compared: \(names)\(outside.count > 10 ? ", …" : "")")
                }
            }
            if plan.hasChanges { throw ExitCode(2) }
        }
    }
}

extension Stratus.Diff {
    /// `--drift`: what the running server's node finds different from the store.
    func runDrift() async throws {
        let findings = try await reportingErrors { try await storeOptions.openBackend().drift() }
        let out = Terminal.standardOutput
        switch output {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            struct Report: Encodable {
                var apiVersion = Resource.apiVersion
                var kind = "DriftReport"
                var findings: [DriftFinding]
            }
            out.line(String(decoding: try encoder.encode(Report(findings: findings)), as: UTF8.self))
        case .text, .github:
            let paint = Paint(enabled: out.colors(color))
            for finding in findings { out.line(paint.yellow("~ \(finding.object) (\(finding.domain)): \(finding.problem)")) }
            out.line(findings.isEmpty ? "No drift: the world matches the store." : "Drift: \(findings.count) finding\(findings.count == 1 ? "" : "s").")
        }
        if !findings.isEmpty { throw ExitCode(2) }
    }
}
