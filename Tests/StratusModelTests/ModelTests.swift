import Foundation
import Testing

@testable import StratusModel

func parseOne(_ text: String, project: String? = nil) throws -> ManifestDocument {
    let documents = try ManifestLoader.load([ManifestSource(name: "t.yaml", data: Data(text.utf8))], defaultProject: project)
    return try #require(documents.first)
}

@Suite struct ModelTests {
    @Test("defaults are filled in, so writing a default out changes nothing")
    func defaultsAreStored() throws {
        let bare = try parseOne("apiVersion: stratus/v1\nkind: Instance\nmetadata: {name: a, project: p}\nspec: {image: i, instanceType: m1.tiny}\n")
        let explicit = try parseOne("apiVersion: stratus/v1\nkind: Instance\nmetadata: {name: a, project: p}\nspec: {image: i, instanceType: m1.tiny, powerState: running, securityGroups: []}\n")
        #expect(bare.specHash == explicit.specHash)
        guard case .instance(let spec) = try bare.resource.spec else { Issue.record("not an instance"); return }
        #expect(spec.powerState == .running)
        #expect(spec.securityGroups == [])
    }

    @Test("-p gives documents without a project their project")
    func defaultProject() throws {
        let document = try parseOne("apiVersion: stratus/v1\nkind: Volume\nmetadata: {name: v}\nspec: {sizeGB: 3}\n", project: "acme")
        #expect(document.key == ResourceKey(kind: .volume, project: "acme", name: "v"))
    }

    @Test("get -o yaml output reads back as the same resource (read-only metadata and status are ignored)")
    func writerRoundTrip() throws {
        let original = try parseOne("""
            apiVersion: stratus/v1
            kind: SecurityGroup
            metadata: {name: web, project: acme, labels: {tier: "80"}, annotations: {note: "yes"}}
            spec:
              description: "true"
              ingress: [{protocol: tcp, fromPort: 22, toPort: 22}, {protocol: udp, fromPort: 53, toPort: 53, cidr: 10.0.0.0/8}]
            """)
        var resource = try original.resource
        resource.metadata.id = "sg-0000abcd"
        resource.metadata.generation = 4
        resource.metadata.creationTimestamp = "2026-01-01T00:00:00Z"
        resource.status = ResourceStatus(phase: "Ready", observedGeneration: 4, conditions: [Condition(type: .ready, status: .true, reason: .applied, lastTransitionTime: "2026-01-01T00:00:00Z")])
        let yaml = try ManifestWriter.yaml(resource)
        let again = try parseOne(yaml)
        #expect(try again.resource.spec == original.resource.spec)
        #expect(try again.resource.metadata.labels == ["tier": "80"])
        #expect(try again.resource.metadata.annotations == ["note": "yes"])
        #expect(again.specHash == original.specHash)
    }

    @Test("the compiled-in catalog is manifests/catalog.yaml, with the seed's six instance types")
    func catalogMatchesFile() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let file = try String(contentsOf: root.appendingPathComponent("manifests/catalog.yaml"), encoding: .utf8)
        #expect(file == BuiltinCatalog.yaml)
        let documents = try ManifestLoader.load([BuiltinCatalog.source])
        let types = documents.compactMap { document -> String? in
            guard case .instanceType(let spec) = try? document.resource.spec else { return nil }
            return "\(document.key.name) \(spec.memoryMB)/\(spec.vcpus)/\(spec.diskGB)"
        }
        #expect(types == ["m1.tiny 512/1/0", "m1.small 1024/1/10", "m1.medium 2048/2/10", "m1.large 4096/4/10", "m1.xlarge 8192/4/10", "c1.medium 2048/4/10"])
    }

    @Test("the examples directory parses cleanly")
    func examplesParse() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let sources = try ManifestLoader.sources(for: [root.appendingPathComponent("examples").path])
        let documents = try ManifestLoader.load(sources)
        #expect(Set(documents.map(\.key.kind)).isSuperset(of: [.user, .project, .keyPair, .network, .securityGroup, .address, .image, .instance, .volume]))
        #expect(documents.filter { $0.key.kind == .instance }.count == 3)
    }

    @Test("field diffs name each changed leaf")
    func fieldDiff() throws {
        let old = try JSONValue(json: #"{"memory":512,"groups":["a","b"],"keep":1}"#)
        let new = try JSONValue(json: #"{"memory":1024,"groups":["a"],"added":"x","keep":1}"#)
        #expect(FieldDiff.changes(from: old, to: new, path: "spec").map(\.summary) == [
            "spec.added: (none) → x", "spec.groups[1]: b → (none)", "spec.memory: 512 → 1024",
        ])
    }

    @Test("the line diff keeps common lines and orders removals before additions")
    func lineDiff() {
        #expect(LineDiff.diff(["a", "b", "c"], ["a", "x", "c"]) == [.same("a"), .removed("b"), .added("x"), .same("c")])
        #expect(LineDiff.diff([], ["a"]) == [.added("a")])
    }

    @Test("names follow DNS label rules; instance types may be dotted")
    func names() {
        #expect(NameRules.problem(with: "web-1", dotted: false) == nil)
        #expect(NameRules.problem(with: "m1.small", dotted: true) == nil)
        #expect(NameRules.problem(with: "m1.small", dotted: false) != nil)
        #expect(NameRules.problem(with: "-web", dotted: false) != nil)
        #expect(NameRules.problem(with: String(repeating: "a", count: 64), dotted: false) != nil)
    }

    @Test("IPv4 parsing rejects what is not a dotted quad")
    func ipv4() {
        #expect(IPv4Address("10.0.0.1")?.description == "10.0.0.1")
        for bad in ["10.0.0", "10.0.0.256", "01.0.0.1", "a.b.c.d", "1.2.3.4.5", ""] { #expect(IPv4Address(bad) == nil, "\(bad)") }
        if case .success(let network) = IPv4Network.parse("192.168.0.0/16") {
            #expect(network.contains(IPv4Address("192.168.4.5")!))
            #expect(!network.contains(IPv4Address("192.169.0.1")!))
        } else {
            Issue.record("192.168.0.0/16 did not parse")
        }
    }

    @Test("kinds are found by any alias, and the id prefixes are EC2's")
    func kinds() {
        #expect(Kind.named("sg") == .securityGroup)
        #expect(Kind.named("Instances") == .instance)
        #expect(Kind.named("flavors") == .instanceType)
        #expect([Kind.instance, .volume, .image, .securityGroup, .address].map(\.idPrefix) == ["i", "vol", "ami", "sg", "eipalloc"])
    }
}

@Suite struct CanonicalJSONTests {
    @Test("canonical JSON of every kind's spec decodes back to the same spec, keys sorted")
    func roundTrip() throws {
        let specs: [ResourceSpec] = [
            .user(UserSpec(fullName: "A \"quoted\" name\twith tab", email: "a@b.c", roles: [.cloudadmin], projects: [ProjectMembership(project: "p", roles: [.sysadmin])])),
            .project(ProjectSpec(manager: "alice", quotas: Quotas(instances: 3))),
            .keyPair(KeyPairSpec(publicKey: "ssh-ed25519 AAAA x")),
            .network(NetworkSpec(cidr: "10.0.0.0/24", vlan: 7, dns: ["1.1.1.1"])),
            .securityGroup(SecurityGroupSpec(ingress: [IngressRule(protocol: .tcp, fromPort: 1, toPort: 2, cidr: "0.0.0.0/0")])),
            .address(AddressSpec(publicIp: "192.0.2.1", instance: "w")),
            .image(ImageSpec(source: "/a/b", format: .raw, public: true)),
            .instanceType(InstanceTypeSpec(memoryMB: 512, vcpus: 1, diskGB: 0)),
            .instance(InstanceSpec(image: "i", instanceType: "m1.tiny", securityGroups: ["a", "b"], userData: "#!/bin/sh\necho \u{1}\\")),
            .volume(VolumeSpec(sizeGB: 1, attachment: VolumeAttachment(instance: "w", device: "/dev/vdc"))),
            .node(NodeSpec(zone: "nova", roles: [.compute])),
        ]
        for spec in specs.map({ $0.defaulted() }) {
            let text = try CanonicalJSON.string(spec.body)
            #expect(try ResourceSpec.fromJSON(Data(text.utf8), kind: spec.kind) == spec, "\(text)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            let keys = text.dropFirst().split(separator: ",").compactMap { $0.split(separator: ":").first }.filter { $0.hasPrefix("\"") }
            #expect(!object.isEmpty)
            #expect(keys.first.map { String($0) } == "\"" + object.keys.sorted().first! + "\"")
        }
        #expect(try CanonicalJSON.string(["b": 1, "a": 2]) == #"{"a":2,"b":1}"#)
    }
}

@Suite struct SourceTests {
    @Test("directories are read recursively in path order, skipping hidden files and directories and other endings")
    func directories() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-src-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        for directory in ["b", "a/deep", ".github/workflows"] {
            try FileManager.default.createDirectory(atPath: "\(root)/\(directory)", withIntermediateDirectories: true)
        }
        for file in ["b/x.yaml", "a/deep/y.yml", "a/z.json", "a/readme.md", ".github/workflows/ci.yml", "a/.hidden.yaml"] {
            try "x".write(toFile: "\(root)/\(file)", atomically: true, encoding: .utf8)
        }
        let names = try ManifestLoader.sources(for: [root]).map { String($0.name.dropFirst(root.count + 1)) }
        #expect(names == ["a/deep/y.yml", "a/z.json", "b/x.yaml"])
        let missing = try #require(throws: ManifestErrors.self) { try ManifestLoader.sources(for: ["\(root)/nope"]) }
        #expect(missing.errors.first?.message == "\(root)/nope: no such file or directory")
    }
}
