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

    @Test("-A through the server: a member sees only their projects, the administrator every one, and no error names another project")
    func allProjects() async throws {
        var cli = try CLI()
        let zeta = try await cli.twoProjects()
        try cli.madeThroughAPI()
        let server = try Server(cli: cli, arguments: ["--api-port", "0"])
        defer { server.kill(SIGINT) }
        let url = try await server.url(cli: cli)
        let carol = IdentityCLITests.exports(try await cli.run("credentials", "carol", "-p", "zeta").stdout)
        let alice = IdentityCLITests.exports(try await cli.run("credentials", "alice", "-p", "acme").stdout)
        cli.server = url
        func act(as keys: [String: String]?, _ arguments: String...) async throws -> CLI.Result {
            var client = cli
            if let keys { client.environment = ["AWS_ACCESS_KEY_ID": keys["AWS_ACCESS_KEY_ID"]!, "AWS_SECRET_ACCESS_KEY": keys["AWS_SECRET_ACCESS_KEY"]!] }
            return try await client.run(arguments)
        }

        // The administrator (the data directory's key) sees both projects, as the local CLI does.
        let admin = try await act(as: nil, "get", "sg", "-A")
        #expect(admin.status == 0 && CLI.firstColumn(admin.stdout) == ["acme", "acme", "acme", "zeta", "zeta", "zeta", "zeta"], "\(admin.stdout)\(admin.stderr)")
        var direct = cli
        direct.server = nil
        let local = try await direct.run("get", "sg", "-A")
        #expect(Self.normalized(local.stdout) == Self.normalized(admin.stdout), "local and remote -A print the same")
        let asCarol = try await act(as: carol, "get", "sg", "-A")
        #expect(asCarol.status == 0 && asCarol.stdout.hasPrefix("PROJECT   NAME "), "\(asCarol.stdout)\(asCarol.stderr)")
        #expect(CLI.firstColumn(asCarol.stdout) == ["zeta", "zeta", "zeta", "zeta"], "only carol's project (its default group too): \(asCarol.stdout)")
        #expect(CLI.firstColumn(try await act(as: alice, "get", "sg", "-A").stdout) == ["acme", "acme", "acme"])

        let described = try await act(as: carol, "describe", "sg", "web", "-A")
        #expect(described.status == 0 && described.stdout.contains("Project:      zeta") && !described.stdout.contains("acme"), "\(described.stdout)\(described.stderr)")
        let adminDescribed = try await act(as: nil, "describe", "sg", "web", "-A")
        #expect(adminDescribed.stdout.contains("Project:      acme") && adminDescribed.stdout.contains("Project:      zeta"), "\(adminDescribed.stdout)")
        let events = try await act(as: carol, "events", "-A", "--kind", "securitygroup")
        #expect(Set(CLI.firstColumn(events.stdout)) == ["zeta"], "\(events.stdout)")
        let diff = try await act(as: carol, "diff", "-f", zeta, "-A")
        #expect(diff.status == 0 && diff.stdout.contains("SecurityGroup zeta/api-zeta") && !diff.stdout.contains("acme"), "\(diff.stdout)\(diff.stderr)")
        let adminDiff = try await act(as: nil, "diff", "-f", zeta, "-A")
        #expect(adminDiff.stdout.contains("SecurityGroup acme/api-acme") && adminDiff.stdout.contains("SecurityGroup zeta/api-zeta"), "\(adminDiff.stdout)")

        // Lookups never say what another project holds: no ambiguity across it, no "did you mean".
        let own = try await act(as: carol, "describe", "sg", "web")
        #expect(own.status == 0 && own.stdout.contains("Project:      zeta"), "acme's web is not carol's to be confused with: \(own.stderr)")
        let ambiguous = try await act(as: nil, "describe", "sg", "web")
        #expect(ambiguous.status == 1 && ambiguous.stderr.contains("exists in projects acme, zeta"), "\(ambiguous.stderr)")
        let hidden = try await act(as: carol, "get", "sg", "wex", "-p", "acme")
        #expect(hidden.status == 1 && hidden.stderr.contains("SecurityGroup acme/wex not found") && !hidden.stderr.contains("web"), "\(hidden.stderr)")
        let elsewhere = try await act(as: carol, "get", "sg", "api-acme", "-A")
        #expect(elsewhere.status == 1 && elsewhere.stderr.contains("not found in any project"), "\(elsewhere.stderr)")
        #expect(try await act(as: carol, "get", "sg", "-A", "-p", "acme").stderr.contains("cannot be combined with -p/--project acme"))
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
