import Foundation
import StratusTestSupport
import Testing

/// `/metrics` parsed by Prometheus's own text parser (prometheus_client), JSON logs carrying the
/// request ids the APIs return, and the dashboard driven in headless Chromium.
@Suite(.serialized) struct ObservabilityTests {
    static let clients = CLI.repositoryRoot + "/Tests/clients"

    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    /// What `serve.json` says of the listeners, once the API, EC2 and S3 are up.
    static func endpoints(_ cli: CLI, also: [String] = []) async throws -> [String: String] {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let data = FileManager.default.contents(atPath: "\(cli.dataDirectory)/serve.json"),
                let info = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            {
                let urls = info.compactMapValues { $0 as? String }
                if (["apiURL", "ec2URL", "s3URL"] + also).allSatisfy({ urls[$0] != nil }) { return urls }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "serve.json never named every listener"])
    }

    /// The samples of a scrape, or the HTTP status that refused it.
    static func scrape(_ url: String, token: String? = nil) async throws -> (samples: [Sample], status: Int?, contentType: String) {
        let result = try await EC2ClientTests.run(["python3", "\(clients)/metrics_client.py", "scrape", url] + (token.map { [$0] } ?? []), environment: [:])
        let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any] ?? [:]
        if result.status == 3 { return ([], object["status"] as? Int, "") }
        #expect(result.status == 0, "the Prometheus parser read /metrics: \(result.output.prefix(2000))")
        let samples = (object["samples"] as? [[String: Any]] ?? []).map {
            Sample(name: $0["name"] as? String ?? "", labels: $0["labels"] as? [String: String] ?? [:], value: ($0["value"] as? NSNumber)?.doubleValue ?? 0)
        }
        return (samples, nil, object["contentType"] as? String ?? "")
    }

    /// The sum of the samples called `name` whose labels include `labels`.
    static func value(_ samples: [Sample], _ name: String, _ labels: [String: String] = [:]) -> Double {
        samples.filter { sample in sample.name == name && labels.allSatisfy { key, value in sample.labels[key] == value } }.map(\.value).reduce(0, +)
    }

    /// A server on the examples' identities, with alice's keys for the clients.
    static func cloud(_ arguments: [String] = []) async throws -> (CLI, Server, [String: String], examples: String) {
        let cli = try CLI()
        let examples = try cli.copyExamples()
        let server = try Server(cli: cli, arguments: ["--api-port", "0", "--hypervisor", "test", "--log-format", "json"] + arguments)
        _ = try await server.url(cli: cli)
        #expect(try await cli.run("apply", "-f", "\(examples)/identity.yaml").status == 0)
        let urls = try await endpoints(cli)
        var environment = ["API_URL": urls["apiURL"]!, "EC2_URL": urls["ec2URL"]!, "S3_URL": urls["s3URL"]!, "AWS_EC2_METADATA_DISABLED": "true", "NO_PROXY": "127.0.0.1"]
        let keys = IdentityCLITests.exports(try await cli.run("credentials", "alice", "-p", "acme").stdout)
        environment["AWS_ACCESS_KEY_ID"] = keys["AWS_ACCESS_KEY_ID"]
        environment["AWS_SECRET_ACCESS_KEY"] = keys["AWS_SECRET_ACCESS_KEY"]
        return (cli, server, environment, examples)
    }

    @Test("/metrics counts EC2, S3 and resource API calls by action and code, with latency histograms, and an apply's reconciles; a change's request id is in the JSON log of its reconcile; no secret and no resource name appears")
    func metricsCountWhatHappened() async throws {
        let (cli, server, environment, _) = try await Self.cloud()
        defer { server.kill(SIGINT) }
        let metrics = environment["API_URL"]! + "/metrics"
        let before = try await Self.scrape(metrics)
        #expect(before.contentType.hasPrefix("text/plain; version=0.0.4"), "Prometheus's content type: \(before.contentType)")
        #expect(Self.value(before.samples, "stratus_build_info") == 1, "build info is there")

        let calls = try await EC2ClientTests.run(["python3", "\(Self.clients)/metrics_client.py", "calls"], environment: environment)
        #expect(calls.status == 0, "the calls went through: \(calls.output.suffix(2000))")
        let ids = try JSONSerialization.jsonObject(with: Data((calls.output.split(separator: "\n").last.map(String.init) ?? "{}").utf8)) as? [String: String] ?? [:]
        try cli.write("groups.yaml", """
            apiVersion: stratus/v1
            kind: SecurityGroup
            metadata: {name: sg-a, project: acme}
            spec: {description: one}
            ---
            apiVersion: stratus/v1
            kind: SecurityGroup
            metadata: {name: sg-b, project: acme}
            spec: {description: two}

            """)
        #expect(try await cli.run("apply", "-f", "\(cli.workDirectory)/groups.yaml").status == 0)

        // The groups are counted once the controller reconciled them (the store counts them at once).
        var after = before
        let deadline = ContinuousClock.now + .seconds(30)
        func reconciledGroups(_ samples: [Sample]) -> Double { Self.value(samples, "stratus_reconciles_total", ["kind": "SecurityGroup"]) }
        repeat {
            try await Task.sleep(for: .milliseconds(200))
            after = try await Self.scrape(metrics)
        } while reconciledGroups(after.samples) - reconciledGroups(before.samples) < 3 && ContinuousClock.now < deadline

        func delta(_ name: String, _ labels: [String: String]) -> Double { Self.value(after.samples, name, labels) - Self.value(before.samples, name, labels) }
        let requests = "stratus_api_requests_total"
        #expect(delta(requests, ["api": "ec2", "action": "DescribeRegions", "code": "200"]) == 3, "three DescribeRegions")
        #expect(delta(requests, ["api": "ec2", "action": "DescribeInstances", "code": "200"]) == 1, "one DescribeInstances")
        #expect(delta(requests, ["api": "ec2", "action": "CreateSecurityGroup", "code": "200"]) == 1, "one CreateSecurityGroup")
        #expect(delta(requests, ["api": "s3", "action": "ListBuckets", "code": "200"]) == 2, "two ListBuckets")
        #expect(delta(requests, ["api": "resource", "action": "whoami", "code": "200"]) == 2, "two signed whoami calls")
        #expect(delta("stratus_api_request_duration_seconds_count", ["api": "ec2", "action": "DescribeRegions"]) == 3, "three DescribeRegions latencies")
        #expect(delta("stratus_api_request_duration_seconds_sum", ["api": "ec2", "action": "DescribeRegions"]) > 0, "that took time")
        #expect(delta("stratus_resources", ["kind": "SecurityGroup"]) == 3, "three more security groups in the store (one through EC2, two applied)")
        #expect(reconciledGroups(after.samples) - reconciledGroups(before.samples) >= 3, "each was reconciled")
        #expect(delta("stratus_reconcile_duration_seconds_count", ["kind": "SecurityGroup"]) >= 3, "with its duration")
        #expect(delta("stratus_store_transaction_duration_seconds_count", ["type": "write"]) >= 3, "the writes were timed")
        #expect(Self.value(after.samples, "stratus_nodes", ["ready": "True"]) == 1, "the one node is Ready")
        #expect(Self.value(after.samples, "stratus_node_capacity", ["resource": "vcpus"]) > 0, "and its vCPUs are counted")
        #expect(after.samples.contains { $0.name == "stratus_workqueue_depth" }, "the work queue's depth is there")

        // Bounded labels: no resource name, user or project is a label value.
        let names: Set<String> = ["alice", "bob", "acme", "sg-a", "sg-b", "metrics-sg", "deploy"]
        let leaked = after.samples.flatMap { $0.labels.values }.filter(names.contains)
        #expect(leaked.isEmpty, "no resource, user or project name is a label: \(Set(leaked))")

        // The request id the EC2 API returned is in the log line of the reconcile of that change.
        let requestId = try #require(ids["CreateSecurityGroup"])
        #expect(ids["whoami"].map { $0.count == 16 } == true, "the resource API returns x-amz-request-id: \(ids)")
        var reconciled: [String: Any]?
        let logDeadline = ContinuousClock.now + .seconds(20)
        var lines: [[String: Any]] = []
        while reconciled == nil && ContinuousClock.now < logDeadline {
            let text = (try? String(contentsOfFile: server.log, encoding: .utf8)) ?? ""
            lines = text.split(separator: "\n").filter { $0.hasPrefix("{") }.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            reconciled = lines.first { $0["requestId"] as? String == requestId && $0["message"] as? String == "reconciled" }
            if reconciled == nil { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(reconciled?["resource"] as? String == "SecurityGroup acme/metrics-sg", "the reconcile of CreateSecurityGroup logs its request id \(requestId): \(reconciled ?? [:])")
        #expect(lines.count > 5 && lines.allSatisfy { $0["time"] != nil && $0["level"] != nil && $0["logger"] != nil }, "every log line is one JSON object with time, level and logger")
        let log = (try? String(contentsOfFile: server.log, encoding: .utf8)) ?? ""
        #expect(!log.contains(environment["AWS_SECRET_ACCESS_KEY"]!), "alice's secret key is in no log line")
    }

    @Test("--metrics-token-file: /metrics on the API port and on --metrics-listen refuses a scrape without the bearer token or with a wrong one, and serves one with it")
    func metricsToken() async throws {
        let cli = try CLI()
        try cli.write("token", "s3cret-scrape-token\n")
        let server = try Server(cli: cli, arguments: ["--api-port", "0", "--hypervisor", "test", "--metrics-listen", "127.0.0.1:0", "--metrics-token-file", "\(cli.workDirectory)/token"])
        defer { server.kill(SIGINT) }
        _ = try await server.url(cli: cli)
        let urls = try await Self.endpoints(cli, also: ["metricsURL"])
        for url in [urls["apiURL"]! + "/metrics", urls["metricsURL"]!] {
            #expect(try await Self.scrape(url).status == 401, "\(url) without a token is refused")
            #expect(try await Self.scrape(url, token: "wrong").status == 401, "\(url) with a wrong token is refused")
            let served = try await Self.scrape(url, token: "s3cret-scrape-token")
            #expect(served.status == nil && Self.value(served.samples, "stratus_build_info") == 1, "\(url) with the token is served")
        }
    }

    @Test("top instances shows each project's use of its quotas, top nodes each node's capacity and allocation, as tables and -o json; top nodes through --server needs cloudadmin")
    func top() async throws {
        let (cli, server, environment, examples) = try await Self.cloud()
        defer { server.kill(SIGINT) }
        #expect(try await cli.run("apply", "-f", examples).status == 0)
        let table = try await cli.run("top", "instances")
        #expect(table.status == 0 && table.stdout.contains("PROJECT") && table.stdout.contains("acme") && table.stdout.contains("3/10"), "the examples' 3 instances of acme's 10: \(table.stdout)")
        let json = try await cli.run("top", "instances", "-p", "acme", "-o", "json")
        let projects = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]] ?? []
        let quotas = projects.first?["quotas"] as? [[String: Any]] ?? []
        let instances = quotas.first { $0["field"] as? String == "instances" }
        #expect(instances?["used"] as? Int == 3 && instances?["limit"] as? Int == 10, "\(json.stdout.prefix(500))")
        let nodes = try await cli.run("top", "nodes", "-o", "json")
        let list = try JSONSerialization.jsonObject(with: Data(nodes.stdout.utf8)) as? [[String: Any]] ?? []
        #expect(list.count == 1 && (list.first?["vcpus"] as? Int ?? 0) > 0 && list.first?["ready"] as? Bool == true, "the node, Ready, with its vCPUs: \(nodes.stdout)")
        var remote = cli
        remote.server = environment["API_URL"]
        remote.environment = ["AWS_ACCESS_KEY_ID": environment["AWS_ACCESS_KEY_ID"]!, "AWS_SECRET_ACCESS_KEY": environment["AWS_SECRET_ACCESS_KEY"]!, "AWS_DEFAULT_REGION": "nova"]
        let asAlice = try await remote.run("top", "nodes")
        #expect(asAlice.status == 0 && asAlice.stdout.contains("needs the cloudadmin or itsec role"), "alice sees no node figures: \(asAlice.stdout) \(asAlice.stderr)")
        let link = try await remote.run("dashboard", "-o", "url")
        #expect(link.status == 0 && link.stdout.hasPrefix(environment["API_URL"]! + "/ui/login?token=l1."), "alice gets a sign-in link for herself: \(link.stdout) \(link.stderr)")
        let other = try await remote.run("dashboard", "--user", "bob")
        #expect(other.status != 0 && other.stderr.contains("needs the cloudadmin role"), "but not one for bob: \(other.stderr)")

        // A live feed left open does not hold up a graceful shutdown.
        let jar = "\(cli.workDirectory)/cookies"
        let signIn = try await EC2ClientTests.run(["curl", "-s", "-o", "/dev/null", "-c", jar, link.stdout.trimmingCharacters(in: .whitespacesAndNewlines)], environment: [:])
        #expect(signIn.status == 0)
        let stream = Process()
        stream.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        stream.arguments = ["-s", "-N", "-m", "60", "-b", jar, environment["API_URL"]! + "/ui/events"]
        stream.standardOutput = FileHandle.nullDevice
        try stream.run()
        defer { if stream.isRunning { stream.terminate() } }
        try await Task.sleep(for: .seconds(1))
        let stopping = ContinuousClock.now
        kill(server.process.processIdentifier, SIGINT)
        while server.process.isRunning && ContinuousClock.now - stopping < .seconds(15) { try await Task.sleep(for: .milliseconds(100)) }
        #expect(!server.process.isRunning, "serve stopped within 15 s of SIGINT with a live feed open (took \(ContinuousClock.now - stopping))")
    }

    @Test("the dashboard in headless Chromium: sign in, the examples' instances Running, web-1's page, a reboot arriving live, a reboot from the page, a reader refused, sign out; no cookie or a wrong CSRF token refused; screenshots not blank")
    func dashboardInChromium() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium"), FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver") else {
            Issue.record("chromium and chromium-driver are not installed (make install-deps installs them)")
            return
        }
        let (cli, server, environment, examples) = try await Self.cloud()
        defer { server.kill(SIGINT) }
        #expect(try await cli.run("apply", "-f", examples).status == 0)
        var browser = environment
        browser["ALICE_KEY"] = environment["AWS_ACCESS_KEY_ID"]
        browser["ALICE_SECRET"] = environment["AWS_SECRET_ACCESS_KEY"]
        for (user, prefix, project) in [("admin", "ADMIN", nil), ("bob", "READER", "acme")] as [(String, String, String?)] {
            let keys = IdentityCLITests.exports(try await cli.run(["credentials", user] + (project.map { ["-p", $0] } ?? [])).stdout)
            browser["\(prefix)_KEY"] = keys["AWS_ACCESS_KEY_ID"]
            browser["\(prefix)_SECRET"] = keys["AWS_SECRET_ACCESS_KEY"]
        }
        let artifacts = CLI.repositoryRoot + "/.build/test-artifacts/dashboard"
        let result = try await EC2ClientTests.run(["timeout", "240", "python3", "\(Self.clients)/dashboard_browser.py", environment["API_URL"]!, artifacts], environment: browser)
        let log = (try? String(contentsOfFile: server.log, encoding: .utf8)).map { String($0.suffix(1500)) } ?? ""
        #expect(result.status == 0 && result.output.contains("dashboard: every check passed"), "\(result.output.suffix(4000))\nserve log:\n\(log)")
        print("dashboard screenshots: \(artifacts)")
        for name in ["login", "overview", "instances", "instance", "refused-reader"] {
            #expect(FileManager.default.fileExists(atPath: "\(artifacts)/dashboard-\(name).png"), "screenshot \(name) saved")
        }
    }
}
