import Foundation
import StratusTestSupport
import Testing

/// `stratus credentials`, signed `--server` requests and roles, and identity input errors, through the real binary.
@Suite struct IdentityCLITests {
    /// The `export NAME=value` lines of `stratus credentials`, as a dictionary.
    static func exports(_ text: String) -> [String: String] {
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("export ") {
            let pair = line.dropFirst(7).split(separator: "=", maxSplits: 1)
            if pair.count == 2 { values[String(pair[0])] = String(pair[1]).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        }
        return values
    }

    @Test("credentials are issued once, rotate on request, and the secret shows nowhere else")
    func credentials() async throws {
        let cli = try CLI()
        let examples = try cli.copyExamples()
        #expect(try await cli.run("apply", "-f", "\(examples)/identity.yaml").status == 0)
        let first = try await cli.run("credentials", "alice", "-p", "acme")
        #expect(first.status == 0, "\(first.stderr)")
        let keys = Self.exports(first.stdout)
        let accessKey = try #require(keys["AWS_ACCESS_KEY_ID"])
        let secret = try #require(keys["AWS_SECRET_ACCESS_KEY"])
        #expect(accessKey.hasPrefix("AKIA") && accessKey.count == 20)
        #expect(secret.count == 40)
        #expect(keys["EC2_URL"] != nil && keys["S3_URL"] != nil)
        #expect(Self.exports(try await cli.run("credentials", "alice", "-p", "acme").stdout) == keys, "the same key again")
        let novarc = try await cli.run("credentials", "alice", "-p", "acme", "--format", "novarc").stdout
        #expect(novarc.contains("export EC2_ACCESS_KEY=\"\(accessKey)\"") && novarc.contains("export EC2_SECRET_KEY=\"\(secret)\""))
        let rotated = Self.exports(try await cli.run("credentials", "alice", "-p", "acme", "--rotate").stdout)
        #expect(rotated["AWS_ACCESS_KEY_ID"] == accessKey)
        #expect(rotated["AWS_SECRET_ACCESS_KEY"] != secret)
        let own = Self.exports(try await cli.run("credentials", "alice").stdout)
        #expect(own["AWS_ACCESS_KEY_ID"] != accessKey, "the user's own key differs from the project key")

        let notMember = try await cli.run("credentials", "bob", "-p", "zeta")
        #expect(notMember.status == 1)
        #expect(notMember.stderr.contains("user bob is not a member of project zeta (member of: acme)"), "\(notMember.stderr)")
        let unknown = try await cli.run("credentials", "nobody")
        #expect(unknown.status == 1 && unknown.stderr.contains("user nobody not found"), "\(unknown.stderr)")

        for arguments in [["get", "users", "-o", "yaml"], ["describe", "user", "alice"], ["events"], ["get", "users", "-o", "json"]] {
            let output = try await cli.run(arguments)
            for value in [secret, rotated["AWS_SECRET_ACCESS_KEY"]!] { #expect(!output.stdout.contains(value), "\(arguments) shows a secret") }
        }
        let database = try Data(contentsOf: URL(fileURLWithPath: "\(cli.dataDirectory)/stratus.sqlite"))
        #expect(database.range(of: Data(rotated["AWS_SECRET_ACCESS_KEY"]!.utf8)) == nil, "secrets are encrypted at rest")
        let keyFile = try FileManager.default.attributesOfItem(atPath: "\(cli.dataDirectory)/secret.key")
        #expect((keyFile[.posixPermissions] as? Int) == 0o600)
    }

    @Test("a server's --region is what credentials export and what a signature must be scoped to")
    func region() async throws {
        let cli = try CLI()
        let examples = try cli.copyExamples()
        #expect(try await cli.run("apply", "-f", "\(examples)/identity.yaml").status == 0)
        let server = try Server(cli: cli, arguments: ["--api-port", "0", "--region", "eu-test-1"])
        defer { server.kill(SIGINT) }
        let url = try await server.url(cli: cli)
        let keys = Self.exports(try await cli.run("credentials", "alice", "-p", "acme").stdout)
        #expect(keys["AWS_DEFAULT_REGION"] == "eu-test-1", "\(keys)")
        var remote = try CLI()
        remote.server = url
        for (name, value) in keys { remote.environment[name] = value }
        let listed = try await remote.run("get", "instances")
        #expect(listed.status == 0, "signed for the exported region: \(listed.stderr)")
        remote.environment["AWS_DEFAULT_REGION"] = "nova"
        let wrong = try await remote.run("get", "instances")
        #expect(wrong.status != 0 && wrong.stderr.contains("region"), "signed for nova: \(wrong.stderr)")
        let local = try await cli.run("get", "instances", "--server", url)
        #expect(local.status == 0, "the administrator key signs for the region in serve.json: \(local.stderr)")
    }

    @Test("duplicate access keys, unknown projects and unknown roles are refused at apply with their position")
    func badInput() async throws {
        let cli = try CLI()
        try cli.write("users.yaml", """
            apiVersion: stratus/v1
            kind: User
            metadata: {name: alice}
            spec: {accessKey: AKIAALICEEXAMPLE0001}
            ---
            apiVersion: stratus/v1
            kind: User
            metadata: {name: bob}
            spec: {accessKey: AKIAALICEEXAMPLE0001}

            """)
        let duplicate = try await cli.run("apply", "-f", "users.yaml")
        #expect(duplicate.status == 1)
        #expect(duplicate.stderr.contains("users.yaml:9:19: User bob: spec.accessKey: access key AKIAALICEEXAMPLE0001 already belongs to user alice"), "\(duplicate.stderr)")
        #expect(duplicate.stderr.contains("nothing was changed"))

        try cli.write("member.yaml", "apiVersion: stratus/v1\nkind: User\nmetadata: {name: carol}\nspec:\n  projects:\n    - project: acne\n      roles: [sysadmn]\n")
        let bad = try await cli.run("apply", "-f", "member.yaml")
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("member.yaml:7:15") && bad.stderr.contains("sysadmn") && bad.stderr.contains("sysadmin"), "\(bad.stderr)")
        try cli.write("member.yaml", "apiVersion: stratus/v1\nkind: User\nmetadata: {name: carol}\nspec:\n  projects:\n    - project: acne\n      roles: [sysadmin]\n")
        let project = try await cli.run("apply", "-f", "member.yaml")
        #expect(project.stderr.contains("member.yaml:6:16: User carol: spec.projects[0].project: Project acne does not exist"), "\(project.stderr)")
        try cli.write("key.yaml", "apiVersion: stratus/v1\nkind: User\nmetadata: {name: dave}\nspec: {accessKey: short}\n")
        #expect(try await cli.run("apply", "-f", "key.yaml").stderr.contains("key.yaml:4:19: User dave: spec.accessKey: expected 16 to 128 characters of A-Z and 0-9"))
        let users = try await cli.run("get", "users").stdout
        #expect(!users.contains("bob") && !users.contains("carol") && !users.contains("dave"), "nothing was applied: \(users)")
    }

    @Test("the server takes only signed requests and authorizes them by role; a rotated secret stops working")
    func signedServer() async throws {
        var cli = try CLI()
        let examples = try cli.copyExamples()
        let server = try Server(cli: cli, arguments: ["--api-port", "0"])
        defer { server.kill(SIGINT) }
        let url = try await server.url(cli: cli)
        #expect(try await cli.run("apply", "-f", "\(examples)/identity.yaml").status == 0)
        try cli.write("outsider.yaml", "apiVersion: stratus/v1\nkind: User\nmetadata: {name: carol}\nspec: {projects: [{project: zeta, roles: [sysadmin]}]}\n---\napiVersion: stratus/v1\nkind: Project\nmetadata: {name: zeta}\nspec: {manager: carol}\n")
        #expect(try await cli.run("apply", "-f", "outsider.yaml").status == 0)
        let alice = Self.exports(try await cli.run("credentials", "alice", "-p", "acme").stdout)
        let bob = Self.exports(try await cli.run("credentials", "bob", "-p", "acme").stdout)
        let carol = Self.exports(try await cli.run("credentials", "carol").stdout)

        // No key at all: the server answers 401 and says what to do.
        var anonymous = try CLI()
        anonymous.server = url
        let unsigned = try await anonymous.run("get", "users")
        #expect(unsigned.status == 1)
        #expect(unsigned.stderr.contains("not signed") && unsigned.stderr.contains("stratus credentials"), "\(unsigned.stderr)")

        cli.server = url
        func act(as keys: [String: String], _ arguments: String...) async throws -> CLI.Result {
            var client = cli
            client.environment = ["AWS_ACCESS_KEY_ID": keys["AWS_ACCESS_KEY_ID"]!, "AWS_SECRET_ACCESS_KEY": keys["AWS_SECRET_ACCESS_KEY"]!]
            return try await client.run(arguments)
        }
        try cli.write("web.yaml", "apiVersion: stratus/v1\nkind: SecurityGroup\nmetadata: {name: web, project: acme}\nspec: {ingress: [{protocol: tcp, fromPort: 80, toPort: 80}]}\n")
        let denied = try await act(as: bob, "apply", "-f", "web.yaml")
        #expect(denied.status == 1)
        #expect(denied.stderr.contains("user bob may not change SecurityGroup resources in project acme: that needs the netadmin or projectmanager role"), "\(denied.stderr)")
        let allowed = try await act(as: alice, "apply", "-f", "web.yaml")
        #expect(allowed.status == 0, "\(allowed.stderr)")
        #expect(try await act(as: alice, "apply", "-f", "outsider.yaml").status == 0, "re-applying what is there changes nothing, so it is allowed")
        try cli.write("eve.yaml", "apiVersion: stratus/v1\nkind: User\nmetadata: {name: eve}\nspec: {}\n")
        #expect(try await act(as: alice, "apply", "-f", "eve.yaml").stderr.contains("user alice may not change User resources: that needs the cloudadmin role"))

        // Another project's resources are invisible to carol.
        #expect(try await act(as: alice, "get", "securitygroups", "-p", "acme").stdout.contains("web"))
        #expect(!(try await act(as: carol, "get", "securitygroups", "-p", "acme").stdout.contains("web")))
        #expect(try await act(as: carol, "describe", "securitygroup", "web", "-p", "acme").status == 1)
        #expect(try await act(as: carol, "delete", "securitygroup", "web", "-p", "acme").stderr.contains("not a member of project acme"))

        // Rotation: the old secret fails at once, the new one works.
        let rotated = Self.exports(try await act(as: alice, "credentials", "alice", "-p", "acme", "--rotate").stdout)
        #expect(rotated["AWS_SECRET_ACCESS_KEY"] != alice["AWS_SECRET_ACCESS_KEY"])
        let stale = try await act(as: alice, "get", "users")
        #expect(stale.status == 1 && stale.stderr.contains("signature we calculated does not match"), "\(stale.stderr)")
        #expect(try await act(as: rotated, "get", "users").status == 0)
        #expect(try await act(as: rotated, "credentials", "bob", "-p", "acme").stderr.contains("needs the cloudadmin role"))

        let log = try String(contentsOfFile: server.log, encoding: .utf8)
        for keys in [alice, bob, carol, rotated] { #expect(!log.contains(keys["AWS_SECRET_ACCESS_KEY"]!), "a secret reached the log") }
    }

    @Test("serve --ldap-url converges examples/identity.yaml into slapd, read back with ldapsearch")
    func serveWithLDAP() async throws {
        guard Slapd.isInstalled else {
            Issue.record("slapd is not installed (/usr/sbin/slapd): run `make install-deps`")
            return
        }
        let slapd = try await Slapd.make()
        defer { slapd.destroy() }
        let cli = try CLI()
        let examples = try cli.copyExamples()
        try cli.write("ldap-password", slapd.password + "\n")
        try cli.write("serve.yaml", "ldap-url: \(slapd.url)\nldap-bind-dn: \(slapd.bindDN)\nldap-password-file: \(cli.workDirectory)/ldap-password\nldap-base: \(slapd.base)\n")
        let server = try Server(cli: cli, arguments: ["--api-port", "0", "--config", "\(cli.workDirectory)/serve.yaml"])
        defer { server.kill(SIGINT) }
        _ = try await server.url(cli: cli)
        #expect(try await cli.run("apply", "-f", "\(examples)/identity.yaml").status == 0)
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, try await slapd.dns("(objectClass=stratusKeyPair)").isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        #expect(try await slapd.dns("(objectClass=inetOrgPerson)").sorted() == ["uid=alice,ou=Users,\(slapd.base)", "uid=bob,ou=Users,\(slapd.base)"])
        #expect(try await slapd.values("member", of: "cn=netadmin,cn=acme,ou=Groups,\(slapd.base)") == ["uid=alice,ou=Users,\(slapd.base)"])
        #expect(try await slapd.dns("(objectClass=stratusKeyPair)") == ["cn=acme.deploy,uid=alice,ou=Users,\(slapd.base)"])
        let log = try String(contentsOfFile: server.log, encoding: .utf8)
        #expect(log.contains("identities converge into LDAP"))
        #expect(!log.contains(slapd.password + "\n") && !log.contains("rootpw"))
    }
}
