import Foundation
import Testing

/// The S3 API with unmodified real clients (boto3, awscli) against a live `stratus serve`.
@Suite(.serialized) struct S3ClientTests {
    /// The EC2 tests' cloud (alice and bob in acme, carol in zeta), plus S3_URL and DATA_DIR.
    static func cloud() async throws -> (CLI, Server, [String: String]) {
        let (cli, server, environment) = try await EC2ClientTests.cloud()
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
    }

    static let boto3Run = Task<Boto3Run, any Error> {
        let (_, server, environment) = try await cloud()
        defer { server.kill(SIGINT) }
        let result = try await EC2ClientTests.run(["python3", "\(EC2ClientTests.clients)/s3_boto3.py"], environment: environment)
        let summary = result.output.split(separator: "\n").last { $0.hasPrefix("AREAS ") }.map { String($0.dropFirst("AREAS ".count)) } ?? "{}"
        let areas = (try? JSONSerialization.jsonObject(with: Data(summary.utf8)) as? [String: String]) ?? [:]
        let log = (try? String(contentsOfFile: server.log, encoding: .utf8)).map { String($0.suffix(3000)) } ?? ""
        return Boto3Run(output: result.output, serveLog: log, areas: areas)
    }

    @Test("boto3, by area: buckets, objects, listing, conditions, multipart, copy, checksums, presigned URLs, isolation, hostile keys, errors", arguments: [
        "buckets", "objects", "listing", "conditions", "multipart", "copy", "checksums", "presigned", "isolation", "keys", "errors",
    ])
    func boto3(area: String) async throws {
        let run = try await Self.boto3Run.value
        let result = run.areas[area] ?? "not run: the script stopped before it (\(run.areas.isEmpty ? "no summary" : "an earlier area failed"))"
        #expect(result == "passed", "boto3 \(area): \(result)\n\(run.output.suffix(2000))\n--- serve log:\n\(run.serveLog)")
    }
}
