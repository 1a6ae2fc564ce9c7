import ArgumentParser
import Foundation
import StratusModel
import StratusAPI
import StratusAccess
import StratusCompute
import StratusIdentity
import StratusServer
import StratusStore

/// Where the state lives; shared by every command that opens the store.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The data directory (default: $STRATUS_DATA, else ./.stratus).", valueName: "dir"))
    var dataDir: String?

    @Option(name: .long, help: ArgumentHelp("A `stratus serve` to talk to instead of the data directory, e.g. http://127.0.0.1:8774 ($STRATUS_SERVER).", valueName: "url"))
    var server: String?

    /// The server URL from the flag or `STRATUS_SERVER`, if any.
    var resolvedServer: String? {
        server ?? ProcessInfo.processInfo.environment["STRATUS_SERVER"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The backend a command uses: the server when one is named, the data directory otherwise.
    func openBackend() throws -> any Backend {
        if let server = resolvedServer {
            guard let url = URL(string: server), url.scheme == "http" || url.scheme == "https", url.host != nil else {
                throw CLIError("--server: expected a URL like http://127.0.0.1:8774, got \"\(server)\"")
            }
            return RemoteBackend(client: APIClient(baseURL: url, signer: try signer()))
        }
        return LocalBackend(store: try openStore(), dataDirectory: resolvedDataDir)
    }

    /// The key requests to a server are signed with: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or
    /// EC2_ACCESS_KEY and EC2_SECRET_KEY), as `stratus credentials` prints them, for the region in
    /// AWS_REGION or AWS_DEFAULT_REGION (as it prints that too); else, when this machine holds the
    /// data directory, its administrator key, for the region in its serve.json; else none.
    /// STRATUS_REGION names the region whatever the key.
    func signer() throws -> RequestSigner? {
        let environment = ProcessInfo.processInfo.environment
        func value(_ names: String...) -> String? { names.lazy.compactMap { environment[$0] }.first { !$0.isEmpty } }
        if let accessKey = value("AWS_ACCESS_KEY_ID", "EC2_ACCESS_KEY"), let secretKey = value("AWS_SECRET_ACCESS_KEY", "EC2_SECRET_KEY") {
            let region = value("STRATUS_REGION", "AWS_REGION", "AWS_DEFAULT_REGION") ?? ResourceAPI.defaultRegion
            return RequestSigner(accessKey: accessKey, secretKey: secretKey, region: region)
        }
        if FileManager.default.fileExists(atPath: (resolvedDataDir as NSString).appendingPathComponent("stratus.sqlite")) {
            let admin = try openStore().credential(user: Store.rootUser)
            let region = value("STRATUS_REGION") ?? ServeInfo.read(dataDirectory: resolvedDataDir)?.region ?? ResourceAPI.defaultRegion
            return RequestSigner(accessKey: admin.accessKey, secretKey: admin.secretKey, region: region)
        }
        return nil  // unsigned: the server answers with what to do (or the network with why it is unreachable)
    }

    /// The directory the command uses: the flag, then `STRATUS_DATA`, then `./.stratus`.
    var resolvedDataDir: String {
        dataDir ?? ProcessInfo.processInfo.environment["STRATUS_DATA"].flatMap { $0.isEmpty ? nil : $0 } ?? ".stratus"
    }

    func openStore() throws -> Store {
        do {
            return try Store(dataDirectory: resolvedDataDir)
        } catch {
            throw CLIError("cannot open the store in \(resolvedDataDir): \(error)")
        }
    }
}

/// The manifests a command reads.
struct FileOptions: ParsableArguments {
    @Option(name: [.short, .customLong("filename")], help: ArgumentHelp("A manifest file or directory (recursive); '-' reads standard input. Repeatable.", valueName: "path"))
    var files: [String] = []

    @Option(name: .shortAndLong, help: "The project for documents that do not name one.")
    var project: String?

    @Flag(help: "Parse every file, even those this binary parsed before with the same bytes (see README: parse cache).")
    var noParseCache = false

    /// Reads and checks every document; fails with every problem found.
    ///
    /// With a store, files parsed before (same name, bytes, project and binary) are not parsed again.
    func load(cache: Store? = nil) throws -> [ManifestDocument] {
        try loadManifests(files, project: project, cache: noParseCache ? nil : cache)
    }

    /// Identifies this build of the parser: the executable's size and modification time.
    static let parserIdentity: String = {
        let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let size = attributes[.size], let modified = attributes[.modificationDate] as? Date
        else { return "unknown-\(UUID().uuidString)" }  // no identity: never reuse a cached parse
        return "\(path):\(size):\(modified.timeIntervalSince1970)"
    }()
}

/// `-A` and `-p` name different scopes; refuses the two together rather than let one win.
func validateProjectScope(project: String?, allProjects: Bool) throws {
    if allProjects, let project {
        throw ValidationError("-A/--all-projects covers every project you may see, so it cannot be combined with -p/--project \(project): give one of them")
    }
}

/// Reads and checks every document of the given files and directories.
func loadManifests(_ paths: [String], project: String?, cache: Store?) throws -> [ManifestDocument] {
    let sources = try ManifestLoader.sources(for: paths)
    if sources.isEmpty { throw CLIError("no manifests found in \(paths.joined(separator: ", ")) (*.yaml, *.yml, *.json)") }
    return try ManifestLoader.load(sources, defaultProject: project, cache: cache, cacheSalt: FileOptions.parserIdentity)
}

/// An error the command line reports as it is, with exit code 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Change output formats.
enum ChangeFormat: String, ExpressibleByArgument, CaseIterable {
    case text
    case json
}

/// When to color output.
enum ColorMode: String, ExpressibleByArgument, CaseIterable {
    case auto
    case always
    case never
}

/// Resolves a kind typed on the command line, with a suggestion when it is misspelt.
func parseKind(_ text: String) throws -> Kind {
    if let kind = Kind.named(text) { return kind }
    let all = Kind.allCases.flatMap(\.aliases)
    let hint = Suggestion.closest(to: text, in: all).map { " Did you mean \"\($0)\"?" } ?? ""
    throw CLIError("unknown kind \"\(text)\".\(hint) Kinds: \(Kind.allCases.map(\.plural).joined(separator: ", ")).")
}

/// Runs a body, turning library errors into clear messages and exit code 1.
func reportingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch {
        throw report(error)
    }
}

/// The async form of `reportingErrors`.
func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch {
        throw report(error)
    }
}

/// Prints a library error the way users should see it; returns what to throw.
func report(_ error: any Error) -> any Error {
    do {
        throw error
    } catch let errors as ManifestErrors {
        Terminal.standardError.write(errors.errors.map { "error: \($0)" }.joined(separator: "\n") + "\n")
        let noun = errors.errors.count == 1 ? "error" : "errors"
        Terminal.standardError.write("\(errors.errors.count) \(noun); nothing was changed.\n")
        return ExitCode.failure
    } catch let error as StoreError {
        Terminal.standardError.write("error: \(error)\n")
        return ExitCode.failure
    } catch let error as CLIError {
        Terminal.standardError.write("error: \(error)\n")
        return ExitCode.failure
    } catch let error as ConfigurationError {
        Terminal.standardError.write("error: \(error)\n")
        return ExitCode.failure
    } catch let error as HypervisorError {
        Terminal.standardError.write("error: \(error)\n")
        return ExitCode.failure
    } catch let error as APIError {
        Terminal.standardError.write("error: \(error.message)\n")
        return ExitCode.failure
    } catch {
        return error
    }
}
