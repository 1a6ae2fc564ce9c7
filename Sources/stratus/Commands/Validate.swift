import ArgumentParser
import Foundation
import StratusModel
import StratusStore

extension Stratus {
    /// `stratus validate`: checks manifests offline, for CI and editors.
    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check manifests offline: no store, no server. Exit 0: valid; 1: errors.",
            discussion: """
                Parses and checks every document as `apply` would (types, names, CIDRs, defaults, quotas) \
                and resolves every reference within the files and the built-in catalog (instance types), \
                against an empty store in a temporary directory: a name the files do not define is an error. \
                Nothing is read from or written to a data directory.

                -o github prints GitHub Actions annotations (::error file=…,line=…::), so errors show on the \
                lines of a pull request.

                Examples:
                  stratus validate -f examples/
                  stratus validate -f prod/ -o github
                """
        )

        @Option(name: [.short, .customLong("filename")], help: ArgumentHelp("A manifest file or directory (recursive); '-' reads standard input. Repeatable.", valueName: "path"))
        var files: [String] = []

        @Option(name: .shortAndLong, help: "The project for documents that do not name one.")
        var project: String?

        @Option(name: .shortAndLong, help: "Output format: text, json or github.")
        var output: CheckFormat = .text

        func validate() throws {
            if files.isEmpty { throw ValidationError("give at least one -f FILE|DIR|- (see --help)") }
        }

        func run() async throws {
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-validate-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            let out = Terminal.standardOutput
            var documents: [ManifestDocument] = []
            do {
                documents = try loadManifests(files, project: project, cache: nil)
                let store = try Store(dataDirectory: scratch)
                _ = try store.plan(documents, options: ApplyOptions(applySet: "validate"))
            } catch let errors as ManifestErrors {
                switch output {
                case .github:
                    for error in errors.errors { out.line(GitHubOutput.annotation(error)) }
                    out.line("\(errors.errors.count) error\(errors.errors.count == 1 ? "" : "s") in the manifests.")
                case .json:
                    out.line(try Self.json(Report(valid: false, documents: documents.count, errors: errors.errors)))
                case .text:
                    _ = report(errors)
                }
                throw ExitCode.failure
            } catch let error as StoreError {
                if output == .github { out.line("::error::\(GitHubOutput.message(error.message))") }
                throw report(error)
            } catch {
                throw report(error)
            }
            let files = Set(documents.map(\.location.file)).count
            switch output {
            case .json: out.line(try Self.json(Report(valid: true, documents: documents.count, errors: [])))
            case .text, .github: out.line("\(documents.count) document\(documents.count == 1 ? "" : "s") in \(files) file\(files == 1 ? "" : "s"): valid.")
            }
        }

        struct Report: Encodable {
            var apiVersion = Resource.apiVersion
            var kind = "ValidationReport"
            var valid: Bool
            var documents: Int
            var errors: [ManifestError]
        }

        static func json(_ value: some Encodable) throws -> String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            return String(decoding: try encoder.encode(value), as: UTF8.self)
        }
    }
}

/// Formats of commands that check (`validate`, `diff`): text, JSON, or GitHub Actions annotations.
enum CheckFormat: String, ExpressibleByArgument, CaseIterable {
    case text
    case json
    case github
}
