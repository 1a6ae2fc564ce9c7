import ArgumentParser
import StratusModel
import StratusStore

extension Stratus {
    /// `stratus delete`: marks resources for deletion; the controller finishes it.
    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mark resources for deletion (from files, or by kind and name).",
            discussion: """
                Deletion is a tombstone: the resource shows as Terminating until the controller has removed \
                what it created (domains, exports, entries); then the record goes. A resource annotated \
                stratus/protect: "true" is refused until the annotation is removed. All or nothing.

                Examples:
                  stratus delete -f examples/instances.yaml
                  stratus delete instance web-1 web-2 -p acme
                """
        )

        @Argument(help: "KIND NAME… (instead of -f).")
        var target: [String] = []

        @OptionGroup var files: FileOptions
        @OptionGroup var storeOptions: StoreOptions

        @Flag(help: "Do not fail when a resource does not exist.")
        var ignoreNotFound = false

        func validate() throws {
            if files.files.isEmpty == target.isEmpty { throw ValidationError("give either -f FILE|DIR or KIND NAME… (see --help)") }
            if !target.isEmpty && target.count < 2 { throw ValidationError("give at least one name after the kind") }
        }

        func run() async throws {
            try await reportingErrors {
                var keys: [ResourceKey]
                if files.files.isEmpty {
                    let kind = try parseKind(target[0])
                    if kind.scope == .project && files.project == nil { throw CLIError("\(kind.rawValue) is project-scoped; give the project with -p") }
                    keys = target.dropFirst().map { ResourceKey(kind: kind, project: files.project, name: $0) }
                } else {
                    keys = try files.load().map(\.key)
                }
                let outcomes = try await storeOptions.openBackend().delete(keys.sorted(by: >))
                var missing = 0
                for (key, outcome) in outcomes {
                    switch outcome {
                    case .markedForDeletion: Terminal.standardOutput.line("\(key) marked for deletion (Terminating)")
                    case .alreadyTerminating: Terminal.standardOutput.line("\(key) is already being deleted")
                    case .notFound:
                        missing += 1
                        Terminal.standardError.line("\(key) not found")
                    }
                }
                if missing > 0 && !ignoreNotFound { throw CLIError("\(missing) not found (pass --ignore-not-found to ignore)") }
            }
        }
    }
}
