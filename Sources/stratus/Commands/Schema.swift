import ArgumentParser
import Foundation
import StratusModel

extension Stratus {
    /// `stratus schema`: the JSON Schema of every kind, for editors and CI.
    struct Schema: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a JSON Schema of the manifests (every kind), for editors and CI.",
            discussion: """
                The schema comes from the same types the loader decodes, so it names every field, which \
                ones are required, their types and the values an enumeration allows, and refuses unknown \
                fields. Editors that read yaml-language-server's modeline complete and check manifests \
                with it; `stratus validate` checks what a schema cannot (references, CIDRs, quotas).

                Examples:
                  stratus schema > stratus.schema.json
                  # in a manifest: # yaml-language-server: $schema=./stratus.schema.json
                """
        )

        func run() throws {
            Terminal.standardOutput.line(String(decoding: try CanonicalJSON.encode(ManifestSchema.document()), as: UTF8.self))
        }
    }
}
