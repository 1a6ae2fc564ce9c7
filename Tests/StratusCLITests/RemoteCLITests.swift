import Foundation
import Testing

/// The CLI against a running `stratus serve` (`--server`): same output, same exit codes as local mode.
@Suite struct RemoteCLITests {
    /// Replaces what differs between two stores by nature: EC2 ids and ages.
    static func normalized(_ text: String) -> String {
        text.replacing(/(i|vol|ami|sg|eipalloc)-[0-9a-f]{8}/, with: "ID").replacing(/\b\d+s\b/, with: "AGE")
    }

    @Test("apply, diff, get, describe, delete and events through the server match the local CLI")
    func sameAsLocal() async throws {
        let local = try CLI()
        var remote = try CLI()
        let server = try Server(cli: remote, arguments: ["--api-port", "0"])
        defer { server.kill(SIGINT) }
        remote.server = try await server.url(cli: remote)
        let examplesLocal = try local.copyExamples()
        let examplesRemote = try remote.copyExamples()

        func both(_ arguments: [String], stdin: String? = nil) async throws -> (CLI.Result, CLI.Result) {
            let a = try await local.run(arguments.map { $0.replacingOccurrences(of: "EXAMPLES", with: examplesLocal) }, stdin: stdin)
            let b = try await remote.run(arguments.map { $0.replacingOccurrences(of: "EXAMPLES", with: examplesRemote) }, stdin: stdin)
            return (a, b)
        }
        func expectSame(_ arguments: [String], status: Int32, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            let (a, b) = try await both(arguments)
            #expect(a.status == status, "local \(arguments): \(a.stderr)", sourceLocation: sourceLocation)
            #expect(b.status == status, "remote \(arguments): \(b.stderr)", sourceLocation: sourceLocation)
            let strip = { (text: String) in Self.normalized(text.replacingOccurrences(of: examplesLocal, with: "EXAMPLES").replacingOccurrences(of: examplesRemote, with: "EXAMPLES")) }
            #expect(strip(a.stdout) == strip(b.stdout), "stdout of \(arguments)", sourceLocation: sourceLocation)
            #expect(strip(a.stderr) == strip(b.stderr), "stderr of \(arguments)", sourceLocation: sourceLocation)
        }

        try await expectSame(["diff", "-f", "EXAMPLES"], status: 2)
        try await expectSame(["apply", "-f", "EXAMPLES"], status: 0)
        try await expectSame(["diff", "-f", "EXAMPLES"], status: 0)
        for cli in [local, remote] {
            try cli.write("examples/instances.yaml", try cli.read("examples/instances.yaml").replacingOccurrences(of: "instanceType: m1.medium", with: "instanceType: m1.large"))
        }
        try await expectSame(["diff", "-f", "EXAMPLES"], status: 2)
        try await expectSame(["diff", "-f", "EXAMPLES", "-o", "json"], status: 2)
        try await expectSame(["apply", "-f", "EXAMPLES", "--dry-run"], status: 0)
        try await expectSame(["get", "instance", "web-9", "-p", "acme"], status: 1)
        // Resources read back the same, but for what only the server's controller writes (status) and ids.
        let (a, b) = try await both(["get", "instances", "-p", "acme", "-o", "json"])
        func specs(_ text: String) throws -> [String] {
            let list = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            return try ((list["items"] as? [[String: Any]]) ?? []).map { item in
                var metadata = item["metadata"] as? [String: Any] ?? [:]
                metadata["id"] = nil
                metadata["creationTimestamp"] = nil
                let kept: [String: Any] = ["metadata": metadata, "spec": item["spec"] ?? [:]]
                return String(decoding: try JSONSerialization.data(withJSONObject: kept, options: [.sortedKeys]), as: UTF8.self)
            }
        }
        #expect(try specs(a.stdout) == specs(b.stdout))
        #expect(try specs(b.stdout).count == 3)
        for cli in [local, remote] { try cli.write("examples/zz-bad.yaml", "apiVersion: stratus/v1\nkind: Volume\nmetadata: {name: v, project: acme}\nspec: {sizeGB: ten}\n") }
        try await expectSame(["apply", "-f", "EXAMPLES"], status: 1)
        try await expectSame(["delete", "volume", "db-data", "-p", "acme"], status: 0)
        try await expectSame(["delete", "volume", "nope", "-p", "acme"], status: 1)

        // What the server's controller did is visible through it: instances run on its node.
        let waited = try await remote.run("apply", "-f", "\(examplesRemote)/network.yaml", "--wait", "--timeout", "30s")
        #expect(waited.status == 0, "\(waited.stderr)")
        let described = try await remote.run("describe", "instance", "web-1", "-p", "acme")
        #expect(described.stdout.contains("Status:       Running"), "\(described.stdout)")
        #expect(try await remote.run("events", "--kind", "instance").stdout.contains("DomainRunning"))
        let drift = try await remote.run("diff", "--drift")
        #expect(drift.status == 0, "\(drift.stdout)\(drift.stderr)")
        #expect(drift.stdout == "No drift: the world matches the store.\n")
        #expect(try await remote.run("reboot", "instance", "web-1", "-p", "acme").status == 0)
        #expect(try await remote.run("events", "--kind", "instance").stdout.contains("Rebooted"))
        let noServer = try await local.run("diff", "--drift")
        #expect(noServer.status == 1)
        #expect(noServer.stderr.contains("none is running on"))
    }

    @Test("an unreachable server is a clear error with exit code 1")
    func unreachable() async throws {
        var cli = try CLI()
        cli.server = "http://127.0.0.1:9"
        let result = try await cli.run("get", "instances")
        #expect(result.status == 1)
        #expect(result.stderr.contains("cannot reach the Stratus server at http://127.0.0.1:9"))
        cli.server = "not a url"
        #expect(try await cli.run("get", "instances").stderr.contains("--server: expected a URL like http://127.0.0.1:8774"))
    }
}
