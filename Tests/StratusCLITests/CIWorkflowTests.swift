import Foundation
import Testing

/// What a CI job runs: `validate` offline, `schema` for editors, `diff -o github`, and saved plans.
@Suite struct CIWorkflowTests {
    static let brokenVolume = "apiVersion: stratus/v1\nkind: Volume\nmetadata: {name: v, project: acme}\nspec: {sizeGB: ten}\n"

    @Test("validate checks the examples offline (no data directory appears), and names file:line:column of a bad field and of a dangling reference, as GitHub annotations with -o github")
    func validateOffline() async throws {
        let cli = try CLI()
        let examples = try cli.copyExamples()
        let valid = try await cli.run("validate", "-f", examples)
        #expect(valid.status == 0 && valid.stdout.contains("documents in 4 files: valid."), "\(valid.stdout)\(valid.stderr)")
        #expect(!FileManager.default.fileExists(atPath: cli.dataDirectory), "validate opened no store of the user's")

        // A reference to something only the store could hold is an error offline.
        try cli.write("examples/more.yaml", "apiVersion: stratus/v1\nkind: Instance\nmetadata: {name: lone, project: acme}\nspec: {image: debian-12, instanceType: m1.tiny, keyName: nosuchkey}\n")
        let dangling = try await cli.run("validate", "-f", examples)
        #expect(dangling.status == 1)
        #expect(dangling.stderr.contains("more.yaml:4:58: Instance acme/lone: spec.keyName: KeyPair acme/nosuchkey does not exist"), "\(dangling.stderr)")

        try cli.write("examples/more.yaml", Self.brokenVolume)
        let github = try await cli.run("validate", "-f", examples, "-o", "github")
        #expect(github.status == 1)
        #expect(github.stdout.contains("::error file=\(examples)/more.yaml,line=4,col=16,title=Volume acme/v::spec.sizeGB: expected an integer, got \"ten\""), "\(github.stdout)")
        let json = try await cli.run("validate", "-f", examples, "-o", "json")
        let report = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(json.status == 1 && report?["valid"] as? Bool == false && (report?["errors"] as? [Any])?.count == 1, "\(json.stdout)")
    }

    @Test("schema: every document of examples/ passes Python's jsonschema, and a misspelt field, a wrong type and a bad enum value fail")
    func schemaChecksExamples() async throws {
        let cli = try CLI()
        let schema = try await cli.run("schema")
        #expect(schema.status == 0, "\(schema.stderr)")
        try cli.write("schema.json", schema.stdout)
        try cli.write("bad-field.yaml", "apiVersion: stratus/v1\nkind: Instance\nmetadata: {name: a, project: acme}\nspec: {image: i, instanceTyp: m1.tiny}\n")
        try cli.write("bad-type.yaml", Self.brokenVolume)
        try cli.write("bad-enum.yaml", "apiVersion: stratus/v1\nkind: Instance\nmetadata: {name: a, project: acme}\nspec: {image: i, instanceType: m1.tiny, powerState: paused}\n")
        let script = """
            import glob, json, sys, jsonschema, yaml
            validator = jsonschema.Draft7Validator(json.load(open("schema.json")))
            checked = 0
            for path in sorted(glob.glob(sys.argv[1] + "/*.yaml")):
                for document in yaml.safe_load_all(open(path)):
                    if document is None: continue
                    errors = [e.message for e in validator.iter_errors(document)]
                    if errors: print("INVALID", path, document["kind"], errors)
                    checked += 1
            print("checked", checked)
            for path in ["bad-field.yaml", "bad-type.yaml", "bad-enum.yaml"]:
                errors = [e.message for e in validator.iter_errors(yaml.safe_load(open(path)))]
                print("REJECTED" if errors else "ACCEPTED", path, errors)
            """
        try cli.write("check.py", script)
        let checked = try await MakeRunTests.shell("python3 check.py \(CLI.repositoryRoot)/examples", in: cli.workDirectory)
        #expect(checked.status == 0, "\(checked.stderr)")
        #expect(!checked.stdout.contains("INVALID") && checked.stdout.contains("checked 12"), "\(checked.stdout)")
        for file in ["bad-field.yaml", "bad-type.yaml", "bad-enum.yaml"] { #expect(checked.stdout.contains("REJECTED \(file)"), "\(checked.stdout)") }
        #expect(checked.stdout.contains("'instanceTyp' was unexpected"), "\(checked.stdout)")
    }

    @Test("a saved plan applies exactly what it shows, and is refused, changing nothing, once the store has moved")
    func savedPlans() async throws {
        let cli = try CLI()
        let examples = try cli.copyExamples()
        let plan = "\(cli.workDirectory)/plan.json"
        let saved = try await cli.run("plan", "-f", examples, "-o", plan, "--detailed-exitcode")
        #expect(saved.status == 2 && saved.stdout.contains("+ Instance acme/web-1: create") && saved.stdout.contains("stratus apply \(plan)"), "\(saved.stdout)\(saved.stderr)")
        // The files may change after the plan: the plan holds the files it read.
        try cli.write("examples/instances.yaml", try cli.read("examples/instances.yaml").replacingOccurrences(of: "m1.medium", with: "m1.large"))
        let applied = try await cli.run("apply", plan)
        #expect(applied.status == 0 && applied.stdout.contains("12 created"), "\(applied.stdout)\(applied.stderr)")
        let db = try await cli.run("get", "instance", "db-1", "-p", "acme", "-o", "json")
        #expect(db.stdout.contains("\"instanceType\" : \"m1.medium\"") || db.stdout.contains("\"instanceType\": \"m1.medium\""), "the plan's files, not today's: \(db.stdout)")

        // A second plan, then an unrelated change to the store: the plan is refused whole.
        let second = "\(cli.workDirectory)/second.json"
        #expect(try await cli.run("plan", "-f", examples, "-o", second).status == 0)
        try cli.write("other.yaml", "apiVersion: stratus/v1\nkind: Volume\nmetadata: {name: scratch, project: acme}\nspec: {sizeGB: 1}\n")
        #expect(try await cli.run("apply", "-f", "\(cli.workDirectory)/other.yaml", "--set", "other").status == 0)
        let refused = try await cli.run("apply", second)
        #expect(refused.status == 1 && refused.stderr.contains("the store has changed since this plan was made"), "\(refused.stderr)")
        let after = try await cli.run("get", "instance", "db-1", "-p", "acme", "-o", "json")
        #expect(after.stdout.contains("m1.medium"), "nothing of the refused plan was applied")
        // A file that is not a plan says what it expected.
        let notPlan = try await cli.run("apply", "\(cli.workDirectory)/other.yaml")
        #expect(notPlan.status == 1 && notPlan.stderr.contains("is not a saved plan"), "\(notPlan.stderr)")

        // The same through a server: the version check runs in the server's transaction.
        let server = try Server(cli: cli, arguments: ["--hypervisor", "test:///default", "--api-port", "0"])
        defer { server.kill(SIGTERM) }
        var remote = cli
        remote.server = try await server.url(cli: cli)
        try cli.write("examples/instances.yaml", try cli.read("examples/instances.yaml").replacingOccurrences(of: "m1.large", with: "m1.xlarge"))
        let third = "\(cli.workDirectory)/third.json"
        #expect(try await remote.run("plan", "-f", examples, "-o", third).status == 0)
        let fourth = "\(cli.workDirectory)/fourth.json"
        #expect(try await remote.run("plan", "-f", examples, "-o", fourth).status == 0)
        let remoteApplied = try await remote.run("apply", third)
        #expect(remoteApplied.status == 0 && remoteApplied.stdout.contains("Instance acme/db-1 configured"), "\(remoteApplied.stdout)\(remoteApplied.stderr)")
        let stale = try await remote.run("apply", fourth)
        #expect(stale.status == 1 && stale.stderr.contains("the store has changed since this plan was made"), "\(stale.stderr)")
    }

    @Test("diff -o github: annotations for errors on their lines, and a Markdown summary of the changes in the job summary")
    func diffForGitHub() async throws {
        var cli = try CLI()
        let examples = try cli.copyExamples()
        let summaryFile = "\(cli.workDirectory)/summary.md"
        FileManager.default.createFile(atPath: summaryFile, contents: nil)
        cli.environment["GITHUB_STEP_SUMMARY"] = summaryFile
        let changes = try await cli.run("diff", "-f", examples, "-o", "github")
        #expect(changes.status == 2, "\(changes.stderr)")
        #expect(changes.stdout.contains("**12 to create, 0 to update, 0 to delete**") && changes.stdout.contains("| ➕ create | `Instance acme/web-1` |"), "\(changes.stdout)")
        #expect(changes.stdout.contains("::notice title=stratus diff::12 to create"))
        #expect(try cli.read("summary.md").contains("### Stratus plan for apply set `default`"))
        try cli.write("examples/broken.yaml", Self.brokenVolume)
        let broken = try await cli.run("diff", "-f", examples, "-o", "github")
        #expect(broken.status == 1)
        #expect(broken.stdout.contains("::error file=\(examples)/broken.yaml,line=4,col=16,title=Volume acme/v::spec.sizeGB: expected an integer"), "\(broken.stdout)")
    }
}
