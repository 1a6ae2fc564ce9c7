import Foundation
import StratusCompute
import StratusModel
import StratusStore
import StratusTestSupport
import Testing

/// The real `stratus` binary, run as a user would, against a temporary data directory.
struct CLI {
    let dataDirectory: String
    let workDirectory: String
    /// When set, commands talk to this `stratus serve` instead of the data directory.
    var server: String?
    /// Variables to set (or, with "", to clear) for every command, e.g. AWS_ACCESS_KEY_ID.
    var environment: [String: String] = [:]

    init() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-cli-\(UUID().uuidString)")
        dataDirectory = base.appendingPathComponent("data").path
        workDirectory = base.appendingPathComponent("work").path
        try FileManager.default.createDirectory(atPath: workDirectory, withIntermediateDirectories: true)
    }

    /// The binary SwiftPM built next to the test bundle.
    static var binary: String {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [bundle, bundle.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("stratus").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/stratus").path
    }

    static var repositoryRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `stratus ARGS…` with `STRATUS_DATA` pointing at this test's directory.
    ///
    /// The process is waited for on a dispatch thread: a test blocked in `waitUntilExit` would
    /// hold one of the (two, here) cooperative threads and starve every other test.
    @discardableResult
    func run(_ arguments: String..., stdin: String? = nil) async throws -> Result {
        try await run(arguments, stdin: stdin)
    }

    @discardableResult
    func run(_ arguments: [String], stdin: String? = nil) async throws -> Result {
        let cli = self
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Swift.Result { try cli.runBlocking(arguments, stdin: stdin) }) }
        }
    }

    func runBlocking(_ arguments: [String], stdin: String? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: workDirectory)
        var environment = ProcessInfo.processInfo.environment
        environment["STRATUS_DATA"] = dataDirectory
        environment["NO_COLOR"] = "1"
        environment["STRATUS_SERVER"] = server
        environment["AWS_ACCESS_KEY_ID"] = nil
        environment["AWS_SECRET_ACCESS_KEY"] = nil
        for (name, value) in self.environment { environment[name] = value.isEmpty ? nil : value }
        process.environment = environment
        let out = Pipe()
        let err = Pipe()
        let input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let stdoutData = out.fileHandleForReading.readToEndRetrying()
        let stderrData = err.fileHandleForReading.readToEndRetrying()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdoutData, as: UTF8.self), stderr: String(decoding: stderrData, as: UTF8.self))
    }

    /// Copies the repository's examples into the work directory, to edit them. The examples'
    /// Image names the tiny image in the object store (`make run` puts it there); unless
    /// `objectStoreImage`, the copy names the same files by their local paths instead, which
    /// libvirt's test driver never opens, so a test need not upload 70 MB before it applies them.
    func copyExamples(objectStoreImage: Bool = false) throws -> String {
        let target = (workDirectory as NSString).appendingPathComponent("examples")
        try FileManager.default.copyItem(atPath: (Self.repositoryRoot as NSString).appendingPathComponent("examples"), toPath: target)
        if !objectStoreImage {
            let images = (target as NSString).appendingPathComponent("images.yaml")
            let text = try String(contentsOfFile: images, encoding: .utf8).replacingOccurrences(of: "s3://images/tiny/", with: TinyImage.defaultDirectory + "/")
            try text.write(toFile: images, atomically: true, encoding: .utf8)
        }
        return target
    }

    func write(_ path: String, _ text: String) throws {
        try text.write(toFile: (workDirectory as NSString).appendingPathComponent(path), atomically: true, encoding: .utf8)
    }

    func read(_ path: String) throws -> String {
        try String(contentsOfFile: (workDirectory as NSString).appendingPathComponent(path), encoding: .utf8)
    }
}

extension CLI {
    /// The examples (project acme, with security group web) and project zeta beside them, whose
    /// only member is carol: security groups web and db. Returns the path of zeta's file.
    func twoProjects() async throws -> String {
        let examples = try copyExamples()
        try write("zeta.yaml", """
            apiVersion: stratus/v1
            kind: User
            metadata: {name: carol}
            spec: {projects: [{project: zeta, roles: [sysadmin, netadmin]}]}
            ---
            apiVersion: stratus/v1
            kind: Project
            metadata: {name: zeta}
            spec: {manager: carol}
            ---
            apiVersion: stratus/v1
            kind: SecurityGroup
            metadata: {name: web, project: zeta}
            spec: {}
            ---
            apiVersion: stratus/v1
            kind: SecurityGroup
            metadata: {name: db, project: zeta}
            spec: {}

            """)
        let zeta = "\(workDirectory)/zeta.yaml"
        let applied = try await run("apply", "-f", examples, "-f", zeta)
        #expect(applied.status == 0, "\(applied.stderr)")
        return zeta
    }

    /// A security group in each project written as the EC2 API writes (manager api, no apply set).
    func madeThroughAPI() throws {
        let text = ["acme", "zeta"].map { "apiVersion: stratus/v1\nkind: SecurityGroup\nmetadata: {name: api-\($0), project: \($0)}\nspec: {}\n" }
        let store = try Store(dataDirectory: dataDirectory)
        try store.apply(try ManifestLoader.load([ManifestSource(name: "api.yaml", data: Data(text.joined(separator: "---\n").utf8))]), options: .api)
    }

    /// The first cell of each table row (after the header).
    static func firstColumn(_ table: String) -> [String] {
        table.split(separator: "\n").dropFirst().map { String($0.prefix { $0 != " " }) }
    }
}

@Suite struct CLITests {
    @Test("diff exits 0 in sync, 2 with differences, 1 on error — through the real binary")
    func diffExitCodes() async throws {
        let cli = try CLI()
        let examples = try cli.copyExamples()
        let first = try await cli.run("diff", "-f", examples)
        #expect(first.status == 2, "\(first.stderr)")
        #expect(first.stdout.contains("+ Instance acme/web-1: create"))
        let apply = try await cli.run("apply", "-f", examples)
        #expect(apply.status == 0, "\(apply.stderr)")
        #expect(apply.stdout.contains("Instance acme/web-1 created (i-"))
        #expect(apply.stdout.contains("Applied set \"default\": 12 created, 0 configured, 0 pruned, 0 unchanged."))
        let inSync = try await cli.run("diff", "-f", examples)
        #expect(inSync.status == 0, "\(inSync.stdout)\(inSync.stderr)")
        #expect(inSync.stdout == "Plan: 0 to create, 0 to update, 0 to delete, 12 unchanged.\n")

        let instances = try cli.read("examples/instances.yaml").replacingOccurrences(of: "instanceType: m1.medium", with: "instanceType: m1.large")
        try cli.write("examples/instances.yaml", instances)
        let changed = try await cli.run("diff", "-f", examples)
        #expect(changed.status == 2)
        #expect(changed.stdout.contains("~ Instance acme/db-1 (i-"))
        #expect(changed.stdout.contains("    - instanceType: m1.medium\n    + instanceType: m1.large\n"))
        #expect(changed.stdout.contains("spec.instanceType: m1.medium → m1.large"))

        try cli.write("examples/broken.yaml", "apiVersion: stratus/v1\nkind: Volume\nmetadata: {name: v, project: acme}\nspec: {sizeGB: ten}\n")
        let broken = try await cli.run("diff", "-f", examples)
        #expect(broken.status == 1)
        #expect(broken.stderr.contains("broken.yaml:4:16: Volume acme/v: spec.sizeGB: expected an integer, got \"ten\""))
    }

    @Test("an apply beyond the project's quota fails at the resource that crosses it, with the numbers, and changes nothing")
    func overQuota() async throws {
        let cli = try CLI()
        let examples = try cli.copyExamples()
        #expect(try await cli.run("apply", "-f", examples).status == 0)
        let extra = (0..<8).map { "apiVersion: stratus/v1\nkind: Instance\nmetadata: {name: extra-\($0), project: acme}\nspec: {image: debian-12, instanceType: m1.tiny}\n" }
        try cli.write("more.yaml", extra.joined(separator: "---\n"))
        let refused = try await cli.run("apply", "-f", "\(cli.workDirectory)/more.yaml")
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("more.yaml:38:18: Instance acme/extra-7: project acme's quota allows 10 instances; this would make 11 (3 now, +8 from this apply)"), "\(refused.stderr)")
        #expect(refused.stderr.contains("nothing was changed"))
        let listed = try await cli.run("get", "instances", "-p", "acme", "-o", "json")
        #expect(!listed.stdout.contains("extra-"), "no instance of the refused set was written")
        let planned = try await cli.run("diff", "-f", "\(cli.workDirectory)/more.yaml")
        #expect(planned.status == 1 && planned.stderr.contains("quota allows 10 instances"), "diff admits like apply: \(planned.stderr)")
    }

    @Test("diff -o json has the documented stable shape")
    func diffJSON() async throws {
        let cli = try CLI()
        let examples = try cli.copyExamples()
        try await cli.run("apply", "-f", examples)
        try cli.write("examples/instances.yaml", try cli.read("examples/instances.yaml").replacingOccurrences(of: "instanceType: m1.medium", with: "instanceType: m1.large"))
        let result = try await cli.run("diff", "-f", examples, "-o", "json")
        #expect(result.status == 2)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(report["kind"] as? String == "ChangeReport")
        #expect(report["summary"] as? [String: Int] == ["create": 0, "update": 1, "delete": 0, "unchanged": 11])
        let changes = try #require(report["changes"] as? [[String: Any]])
        #expect(changes.count == 1)
        #expect(changes[0]["action"] as? String == "update")
        #expect(changes[0]["kind"] as? String == "Instance")
        #expect(changes[0]["project"] as? String == "acme")
        #expect(changes[0]["name"] as? String == "db-1")
        let fields = try #require(changes[0]["fields"] as? [[String: String]])
        #expect(fields == [["path": "spec.instanceType", "old": "m1.medium", "new": "m1.large"]])
    }

    @Test("apply --dry-run shows the plan and changes nothing")
    func dryRun() async throws {
        let cli = try CLI()
        let examples = try cli.copyExamples()
        let dry = try await cli.run("apply", "-f", examples, "--dry-run")
        #expect(dry.status == 0)
        #expect(dry.stdout.contains("Nothing was changed (dry run)."))
        let listed = try await cli.run("get", "instances")
        #expect(listed.stdout.isEmpty)
        #expect(listed.stderr.contains("No instances found"))
    }

    @Test("a bad file anywhere in the set applies nothing and names file:line:column")
    func atomicApply() async throws {
        let cli = try CLI()
        let examples = try cli.copyExamples()
        try cli.write("examples/zz-bad.yaml", "apiVersion: stratus/v1\nkind: Instance\nmetadata: {name: x, project: acme}\nspec: {image: debian-12, instanceType: m1.smal}\n")
        let result = try await cli.run("apply", "-f", examples)
        #expect(result.status == 1)
        #expect(result.stderr.contains("zz-bad.yaml:4:40: Instance acme/x: spec.instanceType: InstanceType m1.smal does not exist (neither in these files nor in the store); did you mean \"m1.small\"?"))
        #expect(result.stderr.contains("1 error; nothing was changed."))
        #expect(try await cli.run("get", "users").stdout.isEmpty)
    }

    @Test("get, describe, delete and events work on what apply recorded; -f - reads stdin")
    func getDescribeDelete() async throws {
        let cli = try CLI()
        let examples = try cli.copyExamples()
        try await cli.run("apply", "-f", examples)
        let table = try await cli.run("get", "instances", "-p", "acme")
        #expect(table.stdout.hasPrefix("NAME    PROJECT   ID           IMAGE       TYPE        POWER     NODE   STATUS    AGE\n"))
        #expect(table.stdout.contains("web-1   acme      i-"))
        let json = try await cli.run("get", "instance", "web-1", "-p", "acme", "-o", "json")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let metadata = try #require(object["metadata"] as? [String: Any])
        let id = try #require(metadata["id"] as? String)
        let byID = try await cli.run("get", "instance", id, "-o", "yaml")
        #expect(byID.stdout.contains("name: web-1"))
        let reapplied = try await cli.run("apply", "-f", "-", stdin: byID.stdout)
        #expect(reapplied.stdout.contains("Instance acme/web-1 unchanged"), "\(reapplied.stdout)\(reapplied.stderr)")
        let describe = try await cli.run("describe", "instance", "web-1", "-p", "acme")
        #expect(describe.stdout.contains("ID:           \(id)"))
        #expect(describe.stdout.contains("Created   created by apply:default"))
        let deleted = try await cli.run("delete", "-f", "\(examples)/instances.yaml")
        #expect(deleted.status == 0)
        #expect(deleted.stdout.contains("Instance acme/web-1 marked for deletion (Terminating)"))
        #expect(try await cli.run("get", "instances", "-p", "acme").stdout.contains("Terminating"))
        let events = try await cli.run("events", "--kind", "instance")
        #expect(events.stdout.contains("Deleting"))
        let missing = try await cli.run("get", "instance", "web-9", "-p", "acme")
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("Instance acme/web-9 not found; did you mean \"web-1\"?"))
    }

    @Test("get shows key pairs' and security groups' EC2 names; an EC2 name another group holds is refused with its position")
    func ec2NameColumn() async throws {
        let cli = try CLI()
        _ = try await cli.twoProjects()
        try cli.write("named.yaml", "apiVersion: stratus/v1\nkind: SecurityGroup\nmetadata:\n  name: front\n  project: zeta\n  annotations: {ec2.stratus/name: Web Servers}\nspec: {}\n")
        #expect(try await cli.run("apply", "-f", "\(cli.workDirectory)/named.yaml").status == 0)
        let groups = try await cli.run("get", "sg", "-p", "zeta")
        #expect(groups.stdout.contains("EC2-NAME") && groups.stdout.contains("front ") && groups.stdout.contains("Web Servers"), "\(groups.stdout)")
        try cli.write("clash.yaml", "apiVersion: stratus/v1\nkind: SecurityGroup\nmetadata:\n  name: back\n  project: zeta\n  annotations: {ec2.stratus/name: Web Servers}\nspec: {}\n")
        let clash = try await cli.run("apply", "-f", "\(cli.workDirectory)/clash.yaml")
        #expect(clash.status != 0 && clash.stderr.contains("the EC2 name \"Web Servers\" is already SecurityGroup zeta/front's"), "\(clash.stderr)")
        #expect(try await cli.run("get", "sg", "back", "-p", "zeta").status == 1, "the failed apply made nothing")
    }

    @Test("get -A lists every project with PROJECT first; a NAME matches in each; -A with -p is refused")
    func getAllProjects() async throws {
        let cli = try CLI()
        _ = try await cli.twoProjects()
        let all = try await cli.run("get", "securitygroups", "-A")
        #expect(all.status == 0, "\(all.stderr)")
        // Each project also has its default group (issue 12, part 2).
        #expect(all.stdout.hasPrefix("PROJECT   NAME      ID "), "\(all.stdout)")
        #expect(CLI.firstColumn(all.stdout) == ["acme", "acme", "zeta", "zeta", "zeta"], "\(all.stdout)")
        let pairs = all.stdout.split(separator: "\n").dropFirst().map { $0.split(separator: " ").prefix(2).joined(separator: "/") }
        #expect(pairs == ["acme/default", "acme/web", "zeta/db", "zeta/default", "zeta/web"], "\(all.stdout)")
        let plain = try await cli.run("get", "securitygroups")
        #expect(plain.stdout.hasPrefix("NAME      PROJECT   ID "), "without -A the project stays second: \(plain.stdout)")

        let named = try await cli.run("get", "sg", "web", "-A", "-o", "json")
        #expect(named.status == 0, "\(named.stderr)")
        let list = try #require(try JSONSerialization.jsonObject(with: Data(named.stdout.utf8)) as? [String: Any])
        let items = try #require(list["items"] as? [[String: Any]])
        #expect(items.compactMap { ($0["metadata"] as? [String: Any])?["project"] as? String } == ["acme", "zeta"], "\(named.stdout)")
        #expect(items.allSatisfy { ($0["metadata"] as? [String: Any])?["name"] as? String == "web" })
        let yaml = try await cli.run("get", "sg", "-A", "-o", "yaml")
        #expect(yaml.stdout.components(separatedBy: "project: zeta").count == 4 && yaml.stdout.contains("project: acme"), "\(yaml.stdout)")

        let missing = try await cli.run("get", "sg", "nope", "-A")
        #expect(missing.status == 1 && missing.stderr.contains("SecurityGroup nope not found in any project"), "\(missing.stderr)")
        let none = try await CLI().run("get", "volumes", "-A")
        #expect(none.status == 0 && none.stdout.isEmpty && none.stderr.contains("No volumes found in any project."), "\(none.stdout)\(none.stderr)")
        let both = try await cli.run("get", "sg", "-A", "-p", "acme")
        #expect(both.status == 1)
        #expect(both.stdout.isEmpty && both.stderr.contains("-A/--all-projects") && both.stderr.contains("cannot be combined with -p/--project acme"), "\(both.stderr)")
        let types = try await cli.run("get", "types", "-A")
        #expect(types.stdout.hasPrefix("NAME "), "a cluster-scoped kind has no PROJECT column: \(types.stdout)")
    }

    @Test("events -A starts each row with its project; describe -A describes each match; both refuse -p with -A")
    func eventsAndDescribeAllProjects() async throws {
        let cli = try CLI()
        _ = try await cli.twoProjects()
        let events = try await cli.run("events", "-A", "--kind", "securitygroup")
        #expect(events.status == 0, "\(events.stderr)")
        #expect(events.stdout.hasPrefix("PROJECT   SEQ "), "\(events.stdout)")
        #expect(Set(CLI.firstColumn(events.stdout)) == ["acme", "zeta"], "\(events.stdout)")
        #expect(events.stdout.contains("SecurityGroup db ") && !events.stdout.contains("SecurityGroup zeta/db"), "the PROJECT column names the project: \(events.stdout)")
        let users = try await cli.run("events", "-A", "--kind", "user")
        #expect(Set(CLI.firstColumn(users.stdout)) == ["-"], "cluster-scoped resources belong to no project: \(users.stdout)")
        let plain = try await cli.run("events", "--kind", "securitygroup")
        #expect(plain.stdout.hasPrefix("SEQ ") && plain.stdout.contains("SecurityGroup zeta/db"), "\(plain.stdout)")
        #expect(try await cli.run("events", "-A", "-p", "zeta").stderr.contains("cannot be combined with -p/--project zeta"))

        let ambiguous = try await cli.run("describe", "sg", "web")
        #expect(ambiguous.status == 1 && ambiguous.stderr.contains("exists in projects acme, zeta; choose one with -p"), "\(ambiguous.stderr)")
        let described = try await cli.run("describe", "sg", "web", "-A")
        #expect(described.status == 0, "\(described.stderr)")
        #expect(described.stdout.components(separatedBy: "Name:         web\n").count == 3, "\(described.stdout)")
        #expect(described.stdout.contains("Project:      acme") && described.stdout.contains("Project:      zeta") && !described.stdout.contains("Name:         db"))
        #expect(described.stdout.contains("\n\nName:         web\n"), "a blank line between resources: \(described.stdout)")
        let every = try await cli.run("describe", "sg", "-A")
        #expect(every.stdout.components(separatedBy: "Name:  ").count == 6, "web, web, db and the two default groups: \(every.stdout)")
        let noName = try await cli.run("describe", "sg")
        #expect(noName.status == 1 && noName.stderr.contains("give the NAME to describe, or -A"), "\(noName.stderr)")
        let missing = try await cli.run("describe", "sg", "nope", "-A")
        #expect(missing.status == 1 && missing.stderr.contains("SecurityGroup nope not found in any project"), "\(missing.stderr)")
        #expect(try await cli.run("describe", "sg", "web", "-A", "-p", "acme").status == 1)
    }

    @Test("diff -A lists what the EC2 API made in every project, not only the files' projects; -A with -p or --drift is refused")
    func diffAllProjects() async throws {
        let cli = try CLI()
        let zeta = try await cli.twoProjects()
        try cli.madeThroughAPI()
        let own = try await cli.run("diff", "-f", zeta)
        #expect(own.status == 0, "\(own.stdout)\(own.stderr)")
        #expect(own.stdout.contains("Outside this set: 1 resource made through the EC2 API, not compared: SecurityGroup zeta/api-zeta (sg-"), "\(own.stdout)")
        #expect(!own.stdout.contains("api-acme"))
        let all = try await cli.run("diff", "-f", zeta, "-A")
        #expect(all.status == 0, "\(all.stdout)\(all.stderr)")
        #expect(all.stdout.contains("Outside this set: 2 resources made through the EC2 API, not compared: SecurityGroup acme/api-acme (sg-"), "\(all.stdout)")
        #expect(all.stdout.contains("SecurityGroup zeta/api-zeta (sg-"))
        let json = try await cli.run("diff", "-f", zeta, "-A", "-o", "json")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let outside = try #require(report["outsideSet"] as? [[String: Any]])
        #expect(outside.compactMap { $0["project"] as? String } == ["acme", "zeta"] && outside.allSatisfy { $0["manager"] as? String == "api" }, "\(json.stdout)")
        #expect(try await cli.run("diff", "-f", zeta, "-A", "-p", "zeta").stderr.contains("cannot be combined with -p/--project zeta"))
        let drift = try await cli.run("diff", "--drift", "-A")
        #expect(drift.status == 1 && drift.stderr.contains("--drift always covers every project"), "\(drift.stderr)")
    }

    @Test("apply --prune removes set members dropped from the files, within the budget")
    func prune() async throws {
        let cli = try CLI()
        let examples = try cli.copyExamples()
        #expect(try await cli.run("apply", "-f", examples, "--set", "demo").status == 0)
        let trimmed = try cli.read("examples/instances.yaml").components(separatedBy: "---\n").filter { !$0.contains("name: web-2") }.joined(separator: "---\n")
        try cli.write("examples/instances.yaml", trimmed)
        let diff = try await cli.run("diff", "-f", examples, "--set", "demo", "--prune")
        #expect(diff.status == 2)
        #expect(diff.stdout.contains("- Instance acme/web-2 (i-"))
        let result = try await cli.run("apply", "-f", examples, "--prune", "--set", "demo")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("Instance acme/web-2 pruned (Terminating)"))
        for file in ["instances.yaml", "network.yaml", "images.yaml"] { try FileManager.default.removeItem(atPath: "\(examples)/\(file)") }
        let tooMany = try await cli.run("apply", "-f", examples, "--prune", "--set", "demo")
        #expect(tooMany.status == 1)
        #expect(tooMany.stderr.contains("refusing to prune 7 of 11 resources of apply set \"demo\""))
        #expect(tooMany.stderr.contains("--allow-mass-delete"))
        #expect(try await cli.run("get", "networks", "-p", "acme").stdout.contains("Pending"))
        let allowed = try await cli.run("apply", "-f", examples, "--prune", "--set", "demo", "--allow-mass-delete")
        #expect(allowed.status == 0)
        #expect(allowed.stdout.contains("7 pruned"))
    }

    @Test("unknown kinds and usage errors exit 1 with a suggestion")
    func usageErrors() async throws {
        let cli = try CLI()
        let result = try await cli.run("get", "instnces")
        #expect(result.status == 1)
        #expect(result.stderr.contains("did you mean \"instances\"?") || result.stderr.contains("Did you mean \"instances\"?"))
        #expect(try await cli.run("apply").status == 1)
        #expect(try await cli.run("--help").status == 0)
    }

    @Test("every command's --help discussion is paragraphs ArgumentParser wraps, and examples that fit 80 columns: nothing rewraps raggedly")
    func helpTexts() async throws {
        let cli = try CLI()
        let dump = try await cli.run("--experimental-dump-help")
        #expect(dump.status == 0, "\(dump.stderr)")
        let tool = try #require(try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any])
        var commands: [(path: String, discussion: String)] = []
        func walk(_ command: [String: Any], _ path: String) {
            commands.append((path, command["discussion"] as? String ?? ""))
            for sub in command["subcommands"] as? [[String: Any]] ?? [] { walk(sub, path + " " + (sub["commandName"] as? String ?? "?")) }
        }
        walk(try #require(tool["command"] as? [String: Any]), "stratus")
        #expect(commands.count > 15, "the dump lists the commands (\(commands.count))")
        for (path, discussion) in commands {
            for paragraph in discussion.components(separatedBy: "\n\n") {
                let lines = paragraph.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                // Prose is one line per paragraph; a line broken by hand continues on an unindented
                // line (a heading ends with ":", a list goes on with "-").
                for (line, next) in zip(lines, lines.dropFirst()) where !line.isEmpty && !next.isEmpty {
                    let handBroken = !line.first!.isWhitespace && !next.first!.isWhitespace && !line.hasSuffix(":") && !next.hasPrefix("-")
                    #expect(!handBroken, "\(path): a paragraph broken by hand after \"…\(line.suffix(30))\"")
                }
                // Indented lines (examples, settings) keep their breaks; ArgumentParser indents by 2.
                for line in lines where line.first?.isWhitespace == true {
                    #expect(line.count + 2 <= 80, "\(path): \(line.count + 2) columns at 80 rewrap: \(line)")
                }
            }
        }
    }
}

@Suite struct WatchTests {
    @Test("events --watch -o json streams new events as JSON lines until stopped")
    func watch() async throws {
        let cli = try CLI()
        let examples = try cli.copyExamples()
        #expect(try await cli.run("apply", "-f", "\(examples)/identity.yaml").status == 0)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["events", "--watch", "-o", "json"]
        var environment = ProcessInfo.processInfo.environment
        environment["STRATUS_DATA"] = cli.dataDirectory
        environment["STRATUS_SERVER"] = nil
        process.environment = environment
        let output = "\(cli.workDirectory)/watch.out"
        FileManager.default.createFile(atPath: output, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        try process.run()
        defer {
            process.terminate()
            process.waitUntilExit()
        }
        #expect(try await cli.run("apply", "-f", "\(examples)/images.yaml").status == 0)
        let deadline = ContinuousClock.now + .seconds(60)
        var lines: [String] = []
        while ContinuousClock.now < deadline {
            lines = (try String(contentsOfFile: output, encoding: .utf8)).split(separator: "\n").map(String.init)
            if lines.contains(where: { $0.contains("\"kind\":\"Image\"") }) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let image = try #require(lines.first { $0.contains("\"kind\":\"Image\"") })
        let event = try #require(try JSONSerialization.jsonObject(with: Data(image.utf8)) as? [String: Any])
        #expect(event["reason"] as? String == "Created")
        #expect(lines.allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) != nil })
    }
}
