import ArgumentParser
import Foundation
import StratusModel
import StratusStore

extension Stratus {
    /// `stratus plan`: a reviewed plan saved to a file, applied later exactly as it was reviewed.
    struct Plan: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Save what applying the manifests would change, to apply exactly that later.",
            discussion: """
                Prints the plan as `diff` does and writes it, with the files as they were read, to the \
                file given with -o. `stratus apply FILE` then applies those files, and refuses (exit 1, \
                nothing changed) if the desired state in the store has changed since the plan was made: \
                any apply, EC2 write or delete in between. Status changes do not count.

                Exit 0: the plan was saved (with or without changes); 1: error. With \
                --detailed-exitcode, 2 when the plan has changes, as `terraform plan` does.

                Examples:
                  stratus plan -f prod/ --set prod --prune -o plan.json
                  stratus apply plan.json
                """
        )

        @OptionGroup var files: FileOptions
        @OptionGroup var storeOptions: StoreOptions

        @Option(name: .customLong("set"), help: "The apply set the resources join; --prune only deletes its members.")
        var applySet = "default"

        @Flag(help: "Also delete members of the apply set that the files no longer contain.")
        var prune = false

        @Flag(help: "Allow a prune to delete more than 10 resources or more than half of the set.")
        var allowMassDelete = false

        @Option(name: .shortAndLong, help: ArgumentHelp("Where to save the plan (JSON).", valueName: "file"))
        var output: String

        @Flag(help: "Exit 2 when the plan has changes (0 when there are none).")
        var detailedExitcode = false

        @Option(help: "Color: auto, always or never.")
        var color: ColorMode = .auto

        func validate() throws {
            if files.files.isEmpty { throw ValidationError("give at least one -f FILE|DIR|- (see --help)") }
            if files.files.contains("-") { throw ValidationError("a saved plan keeps the files it read; give files or directories, not -") }
            if let problem = NameRules.problem(with: applySet, dotted: true) { throw ValidationError("--set: \(problem)") }
        }

        func run() async throws {
            let backend = try reportingErrors { try storeOptions.openBackend() }
            let sources = try reportingErrors { try ManifestLoader.sources(for: files.files) }
            if sources.isEmpty { throw CLIError("no manifests found in \(files.files.joined(separator: ", ")) (*.yaml, *.yml, *.json)") }
            let options = ApplyOptions(applySet: applySet, prune: prune, allowMassDelete: allowMassDelete)
            let plan = try await reportingErrors { try await backend.plan(sources: sources, project: files.project, options: options, commit: false) }
            guard let version = plan.storeVersion else { throw CLIError("the server did not say which version of the store it planned against; upgrade it to save plans") }
            let saved = SavedPlan(
                applySet: applySet, prune: prune, allowMassDelete: allowMassDelete, project: files.project, storeVersion: version,
                sources: sources.map { SavedPlan.Source(name: $0.name, text: String(decoding: $0.data, as: UTF8.self)) },
                changes: ChangeReport(plan: plan, applySet: applySet, dryRun: true, includeUnchanged: false)
            )
            try reportingErrors { try saved.write(to: output) }
            let out = Terminal.standardOutput
            ChangePrinter(out: out, paint: Paint(enabled: out.colors(color))).printDiff(plan)
            out.line("Saved the plan to \(output) (store version \(version)). Apply exactly this with: stratus apply \(output)")
            if detailedExitcode && plan.hasChanges { throw ExitCode(2) }
        }
    }
}

/// A plan as `stratus plan` saves it: the files as read, the options, and the store's version.
struct SavedPlan: Codable {
    struct Source: Codable {
        var name: String
        var text: String
    }

    var apiVersion = Resource.apiVersion
    var kind = SavedPlan.kindName
    var applySet: String
    var prune: Bool
    var allowMassDelete: Bool
    var project: String?
    /// The desired-state version the plan was made against; apply refuses any other.
    var storeVersion: Int64
    var sources: [Source]
    /// What the plan changes, for a reviewer (and a CI job) to read; apply recomputes it.
    var changes: ChangeReport

    static let kindName = "SavedPlan"

    func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        try encoder.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// Reads a saved plan; nil when the file is not one (so `apply` can say what it expected).
    static func read(from path: String) throws -> SavedPlan {
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read the plan \(path)") }
        struct Header: Decodable { var kind: String? }
        guard (try? JSONDecoder().decode(Header.self, from: data))?.kind == kindName else {
            throw CLIError("\(path) is not a saved plan (kind: \(kindName)); make one with `stratus plan -f DIR -o \(path)`, or apply manifests with -f")
        }
        do {
            return try JSONDecoder().decode(SavedPlan.self, from: data)
        } catch {
            throw CLIError("\(path) is a damaged saved plan: \(error)")
        }
    }
}
