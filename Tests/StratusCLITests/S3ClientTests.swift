import Foundation
import StratusTestSupport
import Testing

/// The S3 API with unmodified real clients (boto3, awscli) against a live `stratus serve`.
@Suite(.serialized) struct S3ClientTests {
    /// The domain of virtual-host-style requests the boto3 run's server answers (`--s3-domain`).
    static let domain = "s3.stratus.test"

    /// The EC2 tests' cloud (alice and bob in acme, carol in zeta), plus S3_URL and DATA_DIR.
    static func cloud(serverArguments: [String] = []) async throws -> (CLI, Server, [String: String]) {
        let (cli, server, environment) = try await EC2ClientTests.cloud(serverArguments: serverArguments)
        var merged = environment
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, merged["S3_URL"] == nil {
            if let data = FileManager.default.contents(atPath: "\(cli.dataDirectory)/serve.json"),
                let info = try JSONSerialization.jsonObject(with: data) as? [String: Any]
            {
                merged["S3_URL"] = info["s3URL"] as? String
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        _ = try #require(merged["S3_URL"], "serve.json names the S3 endpoint")
        merged["DATA_DIR"] = cli.dataDirectory
        return (cli, server, merged)
    }

    struct Boto3Run: Sendable {
        var output: String
        var serveLog: String
        var areas: [String: String]
        /// `stratus describe project zeta` after its object quota was set.
        var describedZeta: String
    }

    /// One server (with `--s3-domain`) for every boto3 area; zeta's object quota is 0, so each
    /// write of a byte to its buckets is refused.
    static let boto3Run = Task<Boto3Run, any Error> {
        let (cli, server, base) = try await cloud(serverArguments: ["--s3-domain", domain])
        defer { server.kill(SIGINT) }
        try cli.write("zeta-quota.yaml", "apiVersion: stratus/v1\nkind: Project\nmetadata: {name: zeta}\nspec: {manager: carol, quotas: {objectGigabytes: 0}}\n")
        let quota = try await cli.run("apply", "-f", "zeta-quota.yaml")
        #expect(quota.status == 0, "\(quota.stdout)\(quota.stderr)")
        let described = try await cli.run("describe", "project", "zeta")
        var environment = base
        environment["S3_DOMAIN"] = domain
        let result = try await EC2ClientTests.run(["python3", "\(EC2ClientTests.clients)/s3_boto3.py"], environment: environment)
        let summary = result.output.split(separator: "\n").last { $0.hasPrefix("AREAS ") }.map { String($0.dropFirst("AREAS ".count)) } ?? "{}"
        let areas = (try? JSONSerialization.jsonObject(with: Data(summary.utf8)) as? [String: String]) ?? [:]
        let log = (try? String(contentsOfFile: server.log, encoding: .utf8)).map { String($0.suffix(3000)) } ?? ""
        return Boto3Run(output: result.output, serveLog: log, areas: areas, describedZeta: described.stdout)
    }

    @Test("boto3, by area: buckets, objects, listing, conditions, multipart, copy, tagging, checksums, presigned URLs, isolation, virtual hosts, object quota, hostile keys, errors", arguments: [
        "buckets", "objects", "listing", "conditions", "multipart", "copy", "tagging", "checksums", "presigned", "isolation", "virtual", "quota", "keys", "errors",
    ])
    func boto3(area: String) async throws {
        let run = try await Self.boto3Run.value
        let result = run.areas[area] ?? "not run: the script stopped before it (\(run.areas.isEmpty ? "no summary" : "an earlier area failed"))"
        #expect(result == "passed", "boto3 \(area): \(result)\n\(run.output.suffix(2000))\n--- serve log:\n\(run.serveLog)")
    }

    @Test("describe project shows quotas.objectGigabytes")
    func describeShowsObjectQuota() async throws {
        let run = try await Self.boto3Run.value
        #expect(run.describedZeta.contains("objectGigabytes: 0"), "\(run.describedZeta)")
    }

    @Test("awscli: mb, a 200 MiB cp (multipart), sync, ls, a byte-for-byte download, rb of a full bucket, rm, rb")
    func awscli() async throws {
        let (_, server, environment) = try await Self.cloud()
        defer { server.kill(SIGINT) }
        let result = try await EC2ClientTests.run(["bash", "\(EC2ClientTests.clients)/s3_awscli.sh"], environment: environment)
        #expect(result.status == 0 && result.output.contains("awscli checks passed"), "\(result.output.suffix(2000))")
    }

    @Test("rclone as a client: mkdir, copy (multipart), lsf, cat, check --download, purge")
    func rclone() async throws {
        let (_, server, environment) = try await Self.cloud()
        defer { server.kill(SIGINT) }
        let result = try await EC2ClientTests.run(["bash", "\(EC2ClientTests.clients)/s3_rclone.sh"], environment: environment)
        #expect(result.status == 0 && result.output.contains("rclone checks passed"), "\(result.output.suffix(2000))")
    }

    @Test("SigV2 and s3cmd: boto 2's header signatures and query-string URLs, s3cmd with --signature-v2 and with SigV4")
    func sigV2Clients() async throws {
        let (_, server, environment) = try await Self.cloud()
        defer { server.kill(SIGINT) }
        let result = try await EC2ClientTests.run(["python3", "\(EC2ClientTests.clients)/s3_sigv2.py"], environment: environment)
        #expect(result.status == 0 && result.output.contains("checks passed"), "\(result.output.suffix(2000))")
    }

    /// Files under DATA/objects/tmp (a body on its way) and the objects of bucket `partial`.
    static func leftovers(_ cli: CLI, _ environment: [String: String]) async throws -> (temporary: [String], objects: String) {
        let temporary = (try? FileManager.default.contentsOfDirectory(atPath: "\(cli.dataDirectory)/objects/tmp")) ?? []
        let listed = try await EC2ClientTests.run(["aws", "--endpoint-url", environment["S3_URL"]!, "--region", "nova", "s3api", "list-objects-v2", "--bucket", "partial", "--query", "Contents[].Key", "--output", "text"], environment: environment)
        return (temporary, listed.output.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Starts s3_partial.py and waits until it has sent part of its body.
    static func partialUpload(_ key: String, _ environment: [String: String]) async throws -> Process {
        try await offPool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "\(EC2ClientTests.clients)/s3_partial.py", key]
            var merged = ProcessInfo.processInfo.environment
            merged.merge(environment) { _, new in new }
            process.environment = merged
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            var seen = Data()
            while !String(decoding: seen, as: UTF8.self).contains("PARTIAL") {
                let data = pipe.fileHandleForReading.availableRetrying()
                if data.isEmpty { break }
                seen += data
            }
            return process
        }
    }

    @Test("an upload cut off halfway leaves no object and no file: the client killed, and the server killed and restarted")
    func killedUploads() async throws {
        let (cli, server, environment) = try await Self.cloud()
        let made = try await EC2ClientTests.run(["aws", "--endpoint-url", environment["S3_URL"]!, "--region", "nova", "s3", "mb", "s3://partial"], environment: environment)
        #expect(made.status == 0, "\(made.output)")

        let client = try await Self.partialUpload("client-killed", environment)
        #expect(try await Self.leftovers(cli, environment).temporary.count == 1, "the body is on its way to a temporary file")
        kill(client.processIdentifier, SIGKILL)
        client.waitUntilExit()
        var after = try await Self.leftovers(cli, environment)
        for _ in 0..<50 where !after.temporary.isEmpty {
            try await Task.sleep(for: .milliseconds(100))
            after = try await Self.leftovers(cli, environment)
        }
        #expect(after.temporary.isEmpty && (after.objects.isEmpty || after.objects == "None"), "client killed: \(after)")

        let second = try await Self.partialUpload("server-killed", environment)
        server.kill(SIGKILL)
        kill(second.processIdentifier, SIGKILL)
        second.waitUntilExit()
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: "\(cli.dataDirectory)/objects/tmp")) ?? []).count == 1, "the killed server left its temporary file")
        let restarted = try Server(cli: cli, arguments: ["--api-port", "0"])
        defer { restarted.kill(SIGINT) }
        _ = try await restarted.url(cli: cli)
        // serve.json names each listener as it binds: the API's first, so the S3 one is waited for
        // (a fresh-clone CI run read it too early and found none).
        var again = environment
        again["S3_URL"] = nil
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, again["S3_URL"] == nil {
            if let data = FileManager.default.contents(atPath: "\(cli.dataDirectory)/serve.json"), let info = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                (info["pid"] as? Int).map({ Int32($0) == restarted.process.processIdentifier }) ?? false
            {
                again["S3_URL"] = info["s3URL"] as? String
            }
            if again["S3_URL"] == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        _ = try #require(again["S3_URL"], "the restarted server's serve.json names the S3 endpoint")
        after = try await Self.leftovers(cli, again)
        #expect(after.temporary.isEmpty && (after.objects.isEmpty || after.objects == "None"), "server killed, then restarted: \(after)")
    }
}
