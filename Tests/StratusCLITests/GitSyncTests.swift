import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// `kind: GitSync` against a local git repository the test makes, with a live `stratus serve`.
@Suite struct GitSyncTests {
    /// A git repository in the test's work directory, changed by commits the test makes.
    struct Repository {
        let path: String

        init(cli: CLI) async throws {
            path = "\(cli.workDirectory)/repo"
            try await git("init -q -b main && git config user.email test@example.org && git config user.name Test")
        }

        /// A repository whose first commit holds the examples under `site/`; returns it and that commit.
        static func ofExamples(cli: CLI) async throws -> (Repository, String) {
            let repository = try await Repository(cli: cli)
            try FileManager.default.moveItem(atPath: try cli.copyExamples(), toPath: "\(repository.path)/site")
            return (repository, try await repository.commit("the examples"))
        }

        /// Runs `git …` (a shell line after `git `) in the repository; returns its output.
        @discardableResult
        func git(_ line: String) async throws -> String {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            let result = try await MakeRunTests.shell("git \(line)", in: path)
            #expect(result.status == 0, "git \(line): \(result.stderr)")
            return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// Commits everything under the repository; returns the commit's SHA.
        func commit(_ subject: String) async throws -> String {
            try await git("add -A && git commit -q -m '\(subject)'")
            return try await git("rev-parse HEAD")
        }

        func edit(_ file: String, _ change: (String) -> String) throws {
            let url = URL(fileURLWithPath: "\(path)/\(file)")
            try change(try String(contentsOf: url, encoding: .utf8)).write(to: url, atomically: true, encoding: .utf8)
        }
    }

    static func resource(_ cli: CLI, _ kind: String, _ name: String, project: String? = nil) async throws -> [String: Any]? {
        let result = try await cli.run(["get", kind, name, "-o", "json"] + (project.map { ["-p", $0] } ?? []))
        guard result.status == 0 else { return nil }
        return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
    }

    static func annotation(_ resource: [String: Any]?, _ name: String) -> String? {
        ((resource?["metadata"] as? [String: Any])?["annotations"] as? [String: String])?[name]
    }

    /// The SET BY column of a field in describe's "Field managers" table.
    static func fieldLine(_ described: String, _ field: String) -> String? {
        guard let section = described.components(separatedBy: "Field managers:\n").dropFirst().first else { return nil }
        for line in section.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix(field + " ") { return trimmed.dropFirst(field.count).trimmingCharacters(in: .whitespaces) }
        }
        return nil
    }

    static func spec(_ resource: [String: Any]?, _ field: String) -> Any? { (resource?["spec"] as? [String: Any])?[field] }

    static func details(_ resource: [String: Any]?) -> [String: Any] { ((resource?["status"] as? [String: Any])?["details"] as? [String: Any]) ?? [:] }

    static func gitSync(name: String, repository: String, interval: String, secretFile: String, selfHeal: Bool = true) -> String {
        """
        apiVersion: stratus/v1
        kind: GitSync
        metadata:
          name: \(name)
        spec:
          repository: \(repository)
          ref: main
          path: site
          interval: \(interval)
          selfHeal: \(selfHeal)
          webhookSecretFile: \(secretFile)

        """
    }

    /// POSTs a push event to the webhook, signed as GitHub signs it with `secret` (nil: unsigned).
    static func hook(_ api: String, _ name: String, secret: String?, header: String = "X-Hub-Signature-256") async throws -> Int {
        let body = Data(#"{"ref":"refs/heads/main","after":"0000"}"#.utf8)
        var request = URLRequest(url: URL(string: "\(api)/hooks/git/\(name)")!)
        request.httpMethod = "POST"
        request.httpBody = body
        if let secret {
            let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8))).map { String(format: "%02x", $0) }.joined()
            switch header {
            case "X-Gitlab-Token": request.setValue(secret, forHTTPHeaderField: header)
            case "X-Gitea-Signature": request.setValue(mac, forHTTPHeaderField: header)
            default: request.setValue("sha256=\(mac)", forHTTPHeaderField: header)
            }
        }
        let (_, response) = try await URLSession.shared.data(for: request)
        return (response as? HTTPURLResponse)?.statusCode ?? 0
    }

    @Test("a GitSync applies the repository's directory at each commit with the commit on every resource; a bad commit changes nothing; a signed webhook syncs at once")
    func syncsCommits() async throws {
        let cli = try CLI()
        let (repository, first) = try await Repository.ofExamples(cli: cli)
        try cli.write("hook.secret", "s3cret-hook\n")
        let secretFile = "\(cli.workDirectory)/hook.secret"
        try cli.write("sync.yaml", Self.gitSync(name: "site", repository: repository.path, interval: "5s", secretFile: secretFile))
        #expect(try await cli.run("apply", "-f", "\(cli.workDirectory)/sync.yaml").status == 0)
        let server = try Server(cli: cli, arguments: ["--hypervisor", "test:///default", "--api-port", "0"])
        defer { server.kill(SIGTERM) }
        let api = try await server.url(cli: cli)

        // The first commit: every resource of the directory, each naming the commit.
        #expect(try await AgentTests.eventually(.seconds(30)) {
            Self.annotation(try await Self.resource(cli, "instance", "web-1", project: "acme"), "stratus/revision") == first
        }, "web-1 from \(first)")
        let web = try await Self.resource(cli, "instance", "web-1", project: "acme")
        #expect(Self.annotation(web, "stratus/revision-subject") == "the examples")
        #expect((web?["metadata"] as? [String: Any])?["applySet"] as? String == "site" && (web?["metadata"] as? [String: Any])?["manager"] as? String == "git:site")
        let listed = try await cli.run("get", "gitsyncs")
        #expect(listed.stdout.contains(String(first.prefix(12))) && listed.stdout.contains("True"), "\(listed.stdout)")

        // A commit that changes a type and removes a volume is applied within the interval (5 s).
        try repository.edit("site/instances.yaml") { text in
            let withoutVolume = text.components(separatedBy: "\n---\n").filter { !$0.contains("kind: Volume") }.joined(separator: "\n---\n")
            return withoutVolume.replacingOccurrences(of: "instanceType: m1.medium", with: "instanceType: m1.large")
        }
        let second = try await repository.commit("db-1 grows, db-data goes")
        #expect(try await AgentTests.eventually(.seconds(20)) {
            let db = try await Self.resource(cli, "instance", "db-1", project: "acme")
            return Self.spec(db, "instanceType") as? String == "m1.large" && Self.annotation(db, "stratus/revision") == second
        }, "db-1 at \(second)")
        #expect(try await AgentTests.eventually(.seconds(10)) { try await Self.resource(cli, "volume", "db-data", project: "acme") == nil })
        // Unchanged resources keep the commit that last wrote them.
        #expect(Self.annotation(try await Self.resource(cli, "instance", "web-1", project: "acme"), "stratus/revision") == first)
        // describe says who set each field last: the commit that changed it, or the one that made the resource.
        let provenance = try await cli.run("describe", "instance", "db-1", "-p", "acme").stdout
        #expect(Self.fieldLine(provenance, "spec.instanceType") == "git \(second.prefix(12)) (GitSync site)", "\(provenance)")
        #expect(Self.fieldLine(provenance, "spec.image") == "git \(first.prefix(12)) (GitSync site)", "\(provenance)")

        // With an interval of an hour, only the webhook brings the next commit, and only when signed.
        try cli.write("sync.yaml", Self.gitSync(name: "site", repository: repository.path, interval: "1h", secretFile: secretFile))
        #expect(try await cli.run("apply", "-f", "\(cli.workDirectory)/sync.yaml").status == 0)
        // The sync the new spec causes has run (it fetches the commit of now, not the next one).
        #expect(try await AgentTests.eventually(.seconds(20)) {
            let sync = try await Self.resource(cli, "gitsync", "site")
            let generation = (sync?["metadata"] as? [String: Any])?["generation"] as? Int
            return generation == 2 && (sync?["status"] as? [String: Any])?["observedGeneration"] as? Int == generation
        })
        try await Task.sleep(for: .seconds(1))
        try repository.edit("site/instances.yaml") { $0.replacingOccurrences(of: "instanceType: m1.large", with: "instanceType: m1.xlarge") }
        let third = try await repository.commit("db-1 grows again")
        #expect(try await Self.hook(api, "site", secret: nil) == 403)
        #expect(try await Self.hook(api, "site", secret: "wrong") == 403)
        #expect(try await Self.hook(api, "nosuch", secret: "s3cret-hook") == 403)
        #expect(try await Self.hook(api, "site", secret: "wrong", header: "X-Gitlab-Token") == 403)
        try await Task.sleep(for: .seconds(2))
        #expect(Self.spec(try await Self.resource(cli, "instance", "db-1", project: "acme"), "instanceType") as? String == "m1.large", "an unsigned hook changed nothing")
        let started = ContinuousClock.now
        #expect(try await Self.hook(api, "site", secret: "s3cret-hook") == 202)
        #expect(try await AgentTests.eventually(.seconds(10)) {
            Self.annotation(try await Self.resource(cli, "instance", "db-1", project: "acme"), "stratus/revision") == third
        })
        print("GitSyncTests: a commit applied \(ContinuousClock.now - started) after a signed webhook")
        // GitLab's token and Gitea's signature are accepted too.
        #expect(try await Self.hook(api, "site", secret: "s3cret-hook", header: "X-Gitlab-Token") == 202)
        #expect(try await Self.hook(api, "site", secret: "s3cret-hook", header: "X-Gitea-Signature") == 202)

        // A commit with a bad manifest: nothing of it is applied; the status names file:line:column at that commit.
        try repository.edit("site/instances.yaml") { $0.replacingOccurrences(of: "instanceType: m1.xlarge", with: "instanceType: m1.small") }
        try FileManager.default.createDirectory(atPath: "\(repository.path)/site/more", withIntermediateDirectories: true)
        try "apiVersion: stratus/v1\nkind: Volume\nmetadata: {name: v, project: acme}\nspec: {sizeGB: ten}\n".write(toFile: "\(repository.path)/site/more/broken.yaml", atomically: true, encoding: .utf8)
        let broken = try await repository.commit("a broken volume")
        #expect(try await Self.hook(api, "site", secret: "s3cret-hook") == 202)
        #expect(try await AgentTests.eventually(.seconds(10)) { Self.details(try await Self.resource(cli, "gitsync", "site"))["lastAttemptedRevision"] as? String == broken })
        let failed = try await Self.resource(cli, "gitsync", "site")
        let errors = Self.details(failed)["errors"] as? [String] ?? []
        #expect(errors.contains { $0.contains("site/more/broken.yaml:4:16: Volume acme/v: spec.sizeGB: expected an integer, got \"ten\"") }, "\(errors)")
        #expect(Self.details(failed)["lastSyncedRevision"] as? String == third)
        #expect((failed?["status"] as? [String: Any])?["phase"] as? String == "Failed")
        let db = try await Self.resource(cli, "instance", "db-1", project: "acme")
        #expect(Self.spec(db, "instanceType") as? String == "m1.xlarge" && Self.annotation(db, "stratus/revision") == third, "nothing of \(broken) applied")
        let described = try await cli.run("describe", "gitsync", "site")
        #expect(described.stdout.contains("SyncFailed") && described.stdout.contains("a broken volume"), "\(described.stdout)")

        // A link to a file of this host is checked out as a plain file: its text never shows.
        try await repository.git("rm -q site/more/broken.yaml && mkdir -p site/more && ln -s \(secretFile) site/more/link.yaml")
        let linked = try await repository.commit("a link to the hook secret")
        #expect(try await Self.hook(api, "site", secret: "s3cret-hook") == 202)
        #expect(try await AgentTests.eventually(.seconds(10)) { Self.details(try await Self.resource(cli, "gitsync", "site"))["lastAttemptedRevision"] as? String == linked })
        let linkErrors = Self.details(try await Self.resource(cli, "gitsync", "site"))["errors"] as? [String] ?? []
        #expect(!linkErrors.isEmpty && !linkErrors.joined().contains("s3cret-hook"), "\(linkErrors)")

        // A repository may not declare a GitSync (it would read files of this host with the sync's rights).
        try await repository.git("rm -q site/more/link.yaml")
        try FileManager.default.createDirectory(atPath: "\(repository.path)/site/more", withIntermediateDirectories: true)
        try Self.gitSync(name: "inner", repository: "/", interval: "5s", secretFile: "/etc/shadow").write(toFile: "\(repository.path)/site/more/inner.yaml", atomically: true, encoding: .utf8)
        let nested = try await repository.commit("a GitSync in the repository")
        #expect(try await Self.hook(api, "site", secret: "s3cret-hook") == 202)
        #expect(try await AgentTests.eventually(.seconds(10)) {
            let errors = Self.details(try await Self.resource(cli, "gitsync", "site"))["errors"] as? [String] ?? []
            return errors.contains { $0.contains("GitSync inner: a synced repository may not declare a GitSync") }
        }, "\(nested)")
        #expect(try await Self.resource(cli, "gitsync", "inner") == nil)

        // Reverting the commit brings the set back in sync.
        try await repository.git("rm -q site/more/inner.yaml")
        let fixed = try await repository.commit("drop the broken volume")
        #expect(try await Self.hook(api, "site", secret: "s3cret-hook") == 202)
        #expect(try await AgentTests.eventually(.seconds(10)) {
            let sync = try await Self.resource(cli, "gitsync", "site")
            return Self.details(sync)["lastSyncedRevision"] as? String == fixed && (sync?["status"] as? [String: Any])?["phase"] as? String == "Synced"
        })
        #expect(Self.spec(try await Self.resource(cli, "instance", "db-1", project: "acme"), "instanceType") as? String == "m1.small")
    }

    @Test("self-heal: what the EC2 API or another apply set changes is put back within seconds, with an event naming who; with selfHeal false it is reported OutOfSync")
    func selfHeal() async throws {
        let cli = try CLI()
        let (repository, commit) = try await Repository.ofExamples(cli: cli)
        try cli.write("hook.secret", "x")
        // An hour between fetches: only the change feed can bring a repair within seconds.
        try cli.write("sync.yaml", Self.gitSync(name: "site", repository: repository.path, interval: "1h", secretFile: "\(cli.workDirectory)/hook.secret"))
        #expect(try await cli.run("apply", "-f", "\(cli.workDirectory)/sync.yaml").status == 0)
        let server = try Server(cli: cli, arguments: ["--hypervisor", "test:///default", "--api-port", "0"])
        defer { server.kill(SIGTERM) }
        _ = try await server.url(cli: cli)
        #expect(try await AgentTests.eventually(.seconds(30)) {
            Self.annotation(try await Self.resource(cli, "instance", "web-1", project: "acme"), "stratus/revision") == commit
        })
        var environment = IdentityCLITests.exports(try await cli.run("credentials", "alice", "-p", "acme").stdout)
        environment["AWS_EC2_METADATA_DISABLED"] = "true"
        func aws(_ arguments: String...) async throws -> (status: Int32, output: String) {
            try await EC2ClientTests.run(["aws", "--endpoint-url", environment["EC2_URL"]!, "--region", "nova", "ec2"] + arguments, environment: environment)
        }
        func events(_ name: String) async throws -> String { try await cli.run("describe", "instance", name, "-p", "acme").stdout }

        // A tag set through the EC2 API (a label) is taken off again, and the event names alice.
        let id = try #require((try await Self.resource(cli, "instance", "web-1", project: "acme"))?["metadata"] as? [String: Any])["id"] as? String
        let tagged = try await aws("create-tags", "--resources", try #require(id), "--tags", "Key=owner,Value=alice")
        #expect(tagged.status == 0, "\(tagged.output)")
        let changedAt = ContinuousClock.now
        #expect(try await AgentTests.eventually(.seconds(5)) {
            let labels = ((try await Self.resource(cli, "instance", "web-1", project: "acme"))?["metadata"] as? [String: Any])?["labels"] as? [String: String] ?? [:]
            let described = try await events("web-1")
            return labels["owner"] == nil && described.contains("metadata.labels.owner changed by api:alice")
        })
        print("GitSyncTests: an EC2 change put back \(ContinuousClock.now - changedAt) after it was made")

        // TerminateInstances: the instance is made again, and the event says who terminated it.
        #expect(try await aws("terminate-instances", "--instance-ids", try #require(id)).status == 0)
        #expect(try await AgentTests.eventually(.seconds(10)) {
            let again = (try await Self.resource(cli, "instance", "web-1", project: "acme"))?["metadata"] as? [String: Any]
            let described = try await events("web-1")
            return again != nil && again?["id"] as? String != id && described.contains("terminated by alice through the EC2 API")
        })

        // Another apply set taking a resource over is put back too.
        try cli.write("hand.yaml", "apiVersion: stratus/v1\nkind: Instance\nmetadata: {name: db-1, project: acme}\nspec: {image: debian-12, instanceType: m1.tiny}\n")
        let hand = try await cli.run("apply", "-f", "\(cli.workDirectory)/hand.yaml", "--set", "hand")
        #expect(hand.status == 0, "\(hand.stderr)")
        let healed = try await AgentTests.eventually(.seconds(5)) {
            let db = try await Self.resource(cli, "instance", "db-1", project: "acme")
            let described = try await events("db-1")
            return Self.spec(db, "instanceType") as? String == "m1.medium" && described.contains("Reverted   reverted by git:site: Instance acme/db-1: spec.instanceType, ") && described.contains("changed by apply:hand")
        }
        let handEvents = try await events("db-1")
        #expect(healed, "\(handEvents)")

        // ModifyInstanceAttribute (DeleteOnTermination of db-1's volume) is put back too.
        let dbId = try #require(((try await Self.resource(cli, "instance", "db-1", project: "acme"))?["metadata"] as? [String: Any])?["id"] as? String)
        let modified = try await aws("modify-instance-attribute", "--instance-id", dbId, "--block-device-mappings", #"[{"DeviceName":"/dev/vdb","Ebs":{"DeleteOnTermination":true}}]"#)
        #expect(modified.status == 0, "\(modified.output)")
        let volumeHealed = try await AgentTests.eventually(.seconds(5)) {
            let described = try await cli.run("describe", "volume", "db-data", "-p", "acme").stdout
            return described.contains("Volume acme/db-data: spec.attachment.deleteOnTermination changed by api:alice")
        }
        let volumeEvents = try await cli.run("describe", "volume", "db-data", "-p", "acme").stdout
        #expect(volumeHealed, "\(volumeEvents)")
        let attachment = Self.spec(try await Self.resource(cli, "volume", "db-data", project: "acme"), "attachment") as? [String: Any]
        #expect(attachment?["deleteOnTermination"] as? Bool != true, "\(String(describing: attachment))")

        // With selfHeal off the same change stays and the GitSync says what differs.
        try cli.write("sync.yaml", Self.gitSync(name: "site", repository: repository.path, interval: "1h", secretFile: "\(cli.workDirectory)/hook.secret", selfHeal: false))
        #expect(try await cli.run("apply", "-f", "\(cli.workDirectory)/sync.yaml").status == 0)
        try await Task.sleep(for: .seconds(1))
        let webId = try #require(((try await Self.resource(cli, "instance", "web-1", project: "acme"))?["metadata"] as? [String: Any])?["id"] as? String)
        #expect(try await aws("create-tags", "--resources", webId, "--tags", "Key=owner,Value=alice").status == 0)
        #expect(try await AgentTests.eventually(.seconds(5)) {
            let sync = try await Self.resource(cli, "gitsync", "site")
            let synced = ((sync?["status"] as? [String: Any])?["conditions"] as? [[String: Any]] ?? []).first { $0["type"] as? String == "Synced" }
            return synced?["status"] as? String == "False" && synced?["reason"] as? String == "OutOfSync" && (synced?["message"] as? String ?? "").contains("changed by api:alice")
        })
        let labels = ((try await Self.resource(cli, "instance", "web-1", project: "acme"))?["metadata"] as? [String: Any])?["labels"] as? [String: String] ?? [:]
        #expect(labels["owner"] == "alice", "selfHeal false leaves the change")
        let provenance = try await cli.run("describe", "instance", "web-1", "-p", "acme").stdout
        #expect(Self.fieldLine(provenance, "metadata.labels.owner") == "api:alice", "\(provenance)")
        #expect(Self.fieldLine(provenance, "spec.instanceType")?.hasPrefix("git ") == true, "\(provenance)")
        let listed = try await cli.run("get", "gitsyncs")
        #expect(listed.stdout.contains("OutOfSync"), "\(listed.stdout)")
    }
}
