import ArgumentParser
import Foundation
import StratusAPI

extension Stratus {
    /// `stratus credentials USER`: the user's access key and secret, as shell lines.
    struct Credentials: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a user's access key and secret (issued on first use) for the EC2 and S3 APIs and --server.",
            discussion: """
                The key is created the first time it is asked for and kept, encrypted, in the data directory. \
                With -p the key is bound to that project (the user must be a member); without, it is the user's \
                own key and acts in their first project. `admin` is the built-in cloud administrator. The \
                secret is shown only here: never by get, describe, events or the logs.

                Examples:
                  eval "$(stratus credentials alice -p acme)"   export the key into this shell
                  stratus credentials alice -p acme --format novarc > novarc
                  stratus credentials alice -p acme --rotate    new secret; the old one fails
                """
        )

        enum Format: String, ExpressibleByArgument, CaseIterable {
            case env, novarc, json
        }

        @Argument(help: "The user (a User resource, or admin).")
        var user: String

        @Option(name: .shortAndLong, help: "Bind the key to this project.")
        var project: String?

        @Flag(help: "Replace the secret; requests signed with the old one fail from now on.")
        var rotate = false

        @Option(help: "env (export lines, default), novarc (EC2_* lines of the seed's novarc), or json.")
        var format: Format = .env

        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            try await reportingErrors {
                let credential = try await storeOptions.openBackend().credentials(user: user, project: project, rotate: rotate)
                let ec2 = credential.ec2URL ?? "http://127.0.0.1:8773/services/Cloud"
                let s3 = credential.s3URL ?? "http://127.0.0.1:3333"
                let out = Terminal.standardOutput
                switch format {
                case .env:
                    out.line("export AWS_ACCESS_KEY_ID=\(credential.accessKey)")
                    out.line("export AWS_SECRET_ACCESS_KEY=\(credential.secretKey)")
                    out.line("export AWS_DEFAULT_REGION=\(credential.region ?? ResourceAPI.defaultRegion)")
                    out.line("export EC2_URL=\(ec2)")
                    out.line("export S3_URL=\(s3)")
                case .novarc:
                    out.line("export EC2_ACCESS_KEY=\"\(credential.accessKey)\"")
                    out.line("export EC2_SECRET_KEY=\"\(credential.secretKey)\"")
                    out.line("export EC2_URL=\"\(ec2)\"")
                    out.line("export S3_URL=\"\(s3)\"")
                    out.line("export EC2_USER_ID=\"\(credential.user)\"")
                    if let project = credential.project { out.line("export NOVA_PROJECT=\"\(project)\"") }
                case .json:
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                    out.line(String(decoding: try encoder.encode(credential), as: UTF8.self))
                }
            }
        }
    }
}
