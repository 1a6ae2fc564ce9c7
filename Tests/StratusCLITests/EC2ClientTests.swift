import Foundation
import StratusTestSupport
import Testing

/// The EC2 Query API with unmodified real clients (boto3, awscli, boto 2) against a live `stratus serve`.
///
/// Serialized, and the clients run on a dispatch thread: a test blocked in `waitUntilExit` for
/// seconds would hold one of the two cooperative threads and starve every other test.
@Suite(.serialized) struct EC2ClientTests {
    static let clients = CLI.repositoryRoot + "/Tests/clients"

    /// A server with alice and bob in acme (with its image), carol in zeta; returns the client environment.
    static func cloud(serverArguments: [String] = []) async throws -> (CLI, Server, [String: String]) {
        let cli = try CLI()
        let examples = try cli.copyExamples()
        let server = try Server(cli: cli, arguments: ["--api-port", "0"] + serverArguments)
        _ = try await server.url(cli: cli)
        let deadline = ContinuousClock.now + .seconds(30)
        var ec2URL: String?
        while ContinuousClock.now < deadline, ec2URL == nil {
            if let data = FileManager.default.contents(atPath: "\(cli.dataDirectory)/serve.json"),
                let info = try JSONSerialization.jsonObject(with: data) as? [String: Any]
            {
                ec2URL = info["ec2URL"] as? String
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(try await cli.run("apply", "-f", "\(examples)/identity.yaml", "-f", "\(examples)/images.yaml").status == 0)
        try cli.write("zeta.yaml", "apiVersion: stratus/v1\nkind: User\nmetadata: {name: carol}\nspec: {projects: [{project: zeta, roles: [sysadmin]}]}\n---\napiVersion: stratus/v1\nkind: Project\nmetadata: {name: zeta}\nspec: {manager: carol}\n---\napiVersion: stratus/v1\nkind: Image\nmetadata: {name: netboot, project: zeta}\nspec: {source: /var/lib/stratus/images/netboot.qcow2, kernel: /var/lib/stratus/images/vmlinuz, ramdisk: /var/lib/stratus/images/initrd.img}\n")
        #expect(try await cli.run("apply", "-f", "zeta.yaml").status == 0)
        var environment = ["EC2_URL": try #require(ec2URL), "AWS_DEFAULT_REGION": "nova", "AWS_EC2_METADATA_DISABLED": "true", "NO_PROXY": "127.0.0.1"]
        for (user, prefix) in [("alice", "AWS"), ("bob", "BOB"), ("carol", "CAROL")] {
            let keys = IdentityCLITests.exports(try await cli.run("credentials", user, "-p", user == "carol" ? "zeta" : "acme").stdout)
            environment["\(prefix)_ACCESS_KEY_ID"] = keys["AWS_ACCESS_KEY_ID"]
            environment["\(prefix)_SECRET_ACCESS_KEY"] = keys["AWS_SECRET_ACCESS_KEY"]
        }
        return (cli, server, environment)
    }

    static func run(_ command: [String], environment: [String: String]) async throws -> (status: Int32, output: String) {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try runBlocking(command, environment: environment) })
            }
        }
    }

    static func runBlocking(_ command: [String], environment: [String: String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        var merged = ProcessInfo.processInfo.environment
        for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_CONFIG_FILE"] { merged[name] = nil }
        merged.merge(environment) { _, new in new }
        process.environment = merged
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readToEndRetrying()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// One run of the boto3 checks against one server, shared by the per-area tests below.
    struct Boto3Run: Sendable {
        var cli: CLI
        var output: String
        var serveLog: String
        /// Each area's result: `passed`, `failed: <check>` or `not run`.
        var areas: [String: String]
    }

    static let boto3Run = Task<Boto3Run, any Error> {
        let (cli, server, environment) = try await cloud()
        defer { server.kill(SIGINT) }
        let result = try await run(["python3", "\(clients)/ec2_boto3.py"], environment: environment)
        let summary = result.output.split(separator: "\n").last { $0.hasPrefix("AREAS ") }.map { String($0.dropFirst("AREAS ".count)) } ?? "{}"
        let areas = (try? JSONSerialization.jsonObject(with: Data(summary.utf8)) as? [String: String]) ?? [:]
        let log = (try? String(contentsOfFile: server.log, encoding: .utf8)).map { String($0.suffix(3000)) } ?? ""
        return Boto3Run(cli: cli, output: result.output, serveLog: log, areas: areas)
    }

    @Test("boto3, by area: every action, filters, pagination, quotas, roles, isolation and error codes", arguments: [
        "catalog", "key pairs", "security groups", "images", "instances", "volumes and addresses", "isolation and roles", "errors", "terminate",
    ])
    func boto3(area: String) async throws {
        let run = try await Self.boto3Run.value
        let result = run.areas[area] ?? "not run: the script stopped before it (\(run.areas.isEmpty ? "no summary" : "an earlier area failed"))"
        #expect(result == "passed", "boto3 \(area): \(result)\n\(run.output.suffix(2000))\n--- serve log:\n\(run.serveLog)")
    }

    @Test("what boto3 made is a resource like any other: written by the field manager api, outside every apply set")
    func boto3Resources() async throws {
        let run = try await Self.boto3Run.value
        #expect(run.output.contains("checks passed"), "\(run.output.suffix(500))")
        let events = try await run.cli.run("events", "-o", "json").stdout
        #expect(events.contains("created by api"))
        // A diff of the manifests shows what the API made in the same project as outside the set.
        let diff = try await run.cli.run("diff", "-f", "\(run.cli.workDirectory)/examples/identity.yaml")
        #expect(diff.status == 0, "\(diff.stdout)\(diff.stderr)")
        #expect(diff.stdout.contains("Outside this set:") && diff.stdout.contains("KeyPair acme/ci") && diff.stdout.contains("SecurityGroup acme/ssh"), "\(diff.stdout)")
    }

    @Test("awscli: spaced EC2 names through every action, the same names in another project, the default group, error codes, run, filters, tags, terminate")
    func awscli() async throws {
        let (cli, server, environment) = try await Self.cloud()
        defer { server.kill(SIGINT) }
        let result = try await Self.run(["bash", "\(Self.clients)/ec2_awscli.sh"], environment: environment)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("ok: terminate-instances") && result.output.contains("ok: the default group holds an instance launched without groups"))
        #expect(try await cli.run("get", "keypairs", "-p", "acme").stdout.contains("deploy"))
    }

    @Test("boto 2 (Signature Version 2): zones, key pairs, groups, spaced EC2 names in run_instances, the default group, error codes")
    func boto2() async throws {
        let (_, server, environment) = try await Self.cloud()
        defer { server.kill(SIGINT) }
        let result = try await Self.run(["python3", "\(Self.clients)/ec2_boto2.py"], environment: environment)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("checks passed"))
    }
}
