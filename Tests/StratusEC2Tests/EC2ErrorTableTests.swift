import Foundation
import StratusModel
import StratusStore
import StratusTestSupport
import Testing

@testable import StratusEC2

/// The error-code table of docs/EC2.md, executed; and the required parameters of every action
/// against botocore's model of EC2 (issue 12, part 2).
@Suite struct EC2ErrorTableTests {
    struct Row: CustomStringConvertible {
        let action: String
        let code: String
        let status: Int
        let form: String?
        let user: String
        let elsewhere: String
        var description: String { "\(action) \(code): \(form ?? elsewhere)" }
    }

    static var repository: URL { URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent() }

    /// The rows between `<!-- error-table -->` and `<!-- /error-table -->`.
    static func rows() throws -> [Row] {
        let text = try String(contentsOf: repository.appendingPathComponent("docs/EC2.md"), encoding: .utf8)
        guard let start = text.range(of: "<!-- error-table -->"), let end = text.range(of: "<!-- /error-table -->") else { return [] }
        return text[start.upperBound..<end.lowerBound].split(separator: "\n").dropFirst(2).compactMap { line in
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast().map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count == 4, let status = Int(cells[2]) else { return nil }
            let request = cells[3]
            guard request.hasPrefix("`"), let close = request.dropFirst().firstIndex(of: "`") else {
                return Row(action: cells[0], code: cells[1], status: status, form: nil, user: "", elsewhere: request)
            }
            let form = String(request[request.index(after: request.startIndex)..<close])
            let rest = request[request.index(after: close)...].trimmingCharacters(in: .whitespaces)
            return Row(action: cells[0], code: cells[1], status: status, form: form, user: rest.hasPrefix("as ") ? String(rest.dropFirst(3)) : "alice", elsewhere: "")
        }
    }

    /// The world the table's requests act on; `full` holds the most rules a group may hold.
    static let world = """
        apiVersion: stratus/v1
        kind: User
        metadata: {name: tess}
        spec: {projects: [{project: tight, roles: [sysadmin, netadmin]}]}
        ---
        apiVersion: stratus/v1
        kind: Project
        metadata: {name: tight}
        spec: {manager: tess, quotas: {instances: 0, cores: 0, ram: 0, volumes: 0, gigabytes: 0, addresses: 0, securityGroups: 0}}
        ---
        apiVersion: stratus/v1
        kind: Image
        metadata: {name: debian, project: acme}
        spec: {source: /images/debian.qcow2, public: true}
        ---
        apiVersion: stratus/v1
        kind: SecurityGroup
        metadata: {name: web, project: acme}
        spec: {ingress: [{protocol: tcp, fromPort: 22, toPort: 22}]}
        ---
        apiVersion: stratus/v1
        kind: SecurityGroup
        metadata: {name: full, project: acme}
        spec: {ingress: [\((1...60).map { "{protocol: tcp, fromPort: \($0), toPort: \($0)}" }.joined(separator: ", "))]}
        ---
        apiVersion: stratus/v1
        kind: Snapshot
        metadata: {name: snap, project: acme}
        spec: {volume: data}
        ---
        apiVersion: stratus/v1
        kind: Volume
        metadata: {name: restored, project: acme}
        spec: {sizeGB: 1, snapshot: snap}
        ---
        apiVersion: stratus/v1
        kind: Instance
        metadata: {name: web, project: acme}
        spec: {image: debian, instanceType: m1.tiny, keyName: deploy, securityGroups: [web]}
        ---
        apiVersion: stratus/v1
        kind: Instance
        metadata: {name: gone, project: acme}
        spec: {image: debian, instanceType: m1.tiny}
        ---
        apiVersion: stratus/v1
        kind: Volume
        metadata: {name: data, project: acme}
        spec: {sizeGB: 1}
        ---
        apiVersion: stratus/v1
        kind: Volume
        metadata: {name: attached, project: acme}
        spec: {sizeGB: 1, attachment: {instance: web, device: /dev/vdb}}
        ---
        apiVersion: stratus/v1
        kind: Address
        metadata: {name: ip, project: acme}
        spec: {}
        """

    @Test("every row of docs/EC2.md's error table answers its code and status; the rows provoked elsewhere name a test that exists")
    func table() async throws {
        let store = try EC2RouterTests.store()
        _ = try EC2FidelityTests.apply(store, Self.world, set: "world")
        func id(_ kind: Kind, _ name: String) throws -> String { try #require(try store.get(ResourceKey(kind: kind, project: "acme", name: name))?.metadata.id) }
        let ids = [
            "{ami}": try id(.image, "debian"), "{instance}": try id(.instance, "web"), "{group}": try id(.securityGroup, "web"),
            "{volume}": try id(.volume, "data"), "{attached}": try id(.volume, "attached"), "{address}": try id(.address, "ip"),
            "{terminating}": try id(.instance, "gone"), "{snapshot}": try id(.snapshot, "snap"),
            "{key}": EC2API.keyPairId(try #require(try store.get(ResourceKey(kind: .keyPair, project: "acme", name: "deploy")))),
        ]
        _ = try store.delete([ResourceKey(kind: .instance, project: "acme", name: "gone")])
        let rows = try Self.rows()
        #expect(rows.count > 80, "the table was read (\(rows.count) rows)")
        for row in rows {
            guard var form = row.form else {
                // `File: "what"; Suite: "what"` or `Suite`: each named file must exist and hold a
                // test whose description holds "what".
                for reference in row.elsewhere.split(separator: ";") {
                    let reference = reference.trimmingCharacters(in: .whitespaces)
                    let file = String(reference.prefix { $0 != ":" })
                    let wanted = file.hasSuffix(".py") || file.hasSuffix(".sh") ? file : file + ".swift"
                    let tests = Self.repository.appendingPathComponent("Tests")
                    let path = (FileManager.default.enumerator(atPath: tests.path)?.compactMap { $0 as? String } ?? []).first { $0.hasSuffix("/" + wanted) || $0 == wanted }
                    guard let path else { Issue.record("\(row): no test file \(wanted)"); continue }
                    let source = try String(contentsOf: tests.appendingPathComponent(path), encoding: .utf8)
                    let quoted = reference.split(separator: "\"", omittingEmptySubsequences: false)
                    if quoted.count >= 3 {
                        let described = source.contains(String(quoted[1]))
                        #expect(described, "\(row): \(path) has no test described \"\(quoted[1])\"")
                    }
                }
                continue
            }
            for (placeholder, value) in ids { form = form.replacingOccurrences(of: placeholder, with: value) }
            let project = row.user == "tess" ? "tight" : "acme"
            let answer = try await EC2FidelityTests.send(store, [form], as: row.user, project: project)[0]
            #expect(answer.code == row.code && answer.status == row.status, "\(row) → \(answer.status) \(answer.code ?? "no code"): \(answer.body.prefix(300))")
        }
    }

    /// Each action's required parameters in botocore's model, by the names the EC2 query protocol sends.
    static func modelRequired() async throws -> [String: [String]] {
        let script = """
            import botocore, gzip, json, os, sys
            d = os.path.join(os.path.dirname(botocore.__file__), "data", "ec2")
            version = sorted(os.listdir(d))[-1]
            path = os.path.join(d, version, "service-2.json")
            model = json.load(gzip.open(path + ".gz") if os.path.exists(path + ".gz") else open(path))
            out = {}
            for action in sys.argv[1:]:
                shape = model["shapes"][model["operations"][action]["input"]["shape"]]
                names = []
                for member in shape.get("required", []):
                    spec = shape["members"][member]
                    name = spec.get("queryName") or spec.get("locationName", member)
                    names.append(name[0].upper() + name[1:])
                out[action] = names
            print(json.dumps(out))
            """
        let output = try await offPool { () throws -> Data in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "-c", script] + EC2API.actions.keys.sorted()
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let data = pipe.fileHandleForReading.readToEndRetrying()
            process.waitUntilExit()
            return data
        }
        return try JSONDecoder().decode([String: [String]].self, from: output)
    }

    @Test("each action's required parameters are botocore's, and a call without any one of them is MissingParameter naming it")
    func requiredParameters() async throws {
        let model = try await Self.modelRequired()
        #expect(model.count == EC2API.actions.count, "botocore knows every action (\(model.count))")
        var forms: [(action: String, missing: String, form: String)] = []
        for (action, required) in model.sorted(by: { $0.key < $1.key }) {
            // RegisterImage's Name may be left out for an ImageLocation (see EC2API.requiredParameters).
            let ours = EC2API.requiredParameters[action] ?? []
            let expected = action == "RegisterImage" ? required.filter { $0 != "Name" } : required
            #expect(Set(ours) == Set(expected), "\(action): ours \(ours), botocore's \(required)")
            for missing in required {
                let others = required.filter { $0 != missing }.map { "\($0)=x" }
                forms.append((action, missing, (["Action=\(action)"] + others).joined(separator: "&")))
            }
        }
        #expect(forms.count >= 25, "\(forms.count) required parameters")
        let store = try EC2RouterTests.store()
        let answers = try await EC2FidelityTests.send(store, forms.map(\.form))
        for (sent, answer) in zip(forms, answers) {
            #expect(answer.code == "MissingParameter" && answer.status == 400 && answer.body.contains(sent.missing), "\(sent.action) without \(sent.missing): \(answer.body.prefix(300))")
        }
    }
}
