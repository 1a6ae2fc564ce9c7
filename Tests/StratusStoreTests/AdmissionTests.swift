import Foundation
import StratusModel
import Testing

@testable import StratusStore

/// The admission pipeline, rule by rule: what each refuses, where it points, and that a refused
/// set changes nothing — for manifests and for resources made in code (the EC2 API's path).
@Suite struct AdmissionTests {
    /// A small project: alice manages `small`, whose quotas are tight enough to cross in one document.
    static let base = """
        apiVersion: stratus/v1
        kind: User
        metadata: {name: alice}
        spec: {projects: [{project: small, roles: [sysadmin]}]}
        ---
        apiVersion: stratus/v1
        kind: Project
        metadata: {name: small}
        spec:
          manager: alice
          quotas: {instances: 2, cores: 3, ram: 2048, volumes: 1, gigabytes: 5, addresses: 1, securityGroups: 1}
        ---
        apiVersion: stratus/v1
        kind: Image
        metadata: {name: debian, project: small}
        spec: {source: /images/debian.qcow2}
        ---
        apiVersion: stratus/v1
        kind: Instance
        metadata: {name: one, project: small}
        spec: {image: debian, instanceType: m1.tiny}

        """

    /// A KeyPair document with `publicKey`.
    static func key(_ publicKey: String) -> String {
        "apiVersion: stratus/v1\nkind: KeyPair\nmetadata: {name: k, project: small}\nspec: {publicKey: \"\(publicKey) test\"}\n"
    }

    /// An OpenSSH public-key line of `type` whose key data holds `fields`, each length-prefixed.
    static func sshKey(_ type: String, _ fields: [[UInt8]]) -> String {
        let blob = fields.flatMap { field in [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: field.count >> $0) } + field }
        return "\(type) \(Data(blob).base64EncodedString())"
    }

    struct Case: CustomStringConvertible, Sendable {
        var rule: String
        var manifest: String
        /// Text the error must hold; its line in the manifest (1-based).
        var expected: String
        var line: Int
        var code: String? = nil
        var description: String { rule }
    }

    static let cases: [Case] = [
        Case(rule: "name rules", manifest: "apiVersion: stratus/v1\nkind: SecurityGroup\nmetadata: {name: Web_1, project: small}\nspec: {}\n", expected: "metadata.name: \"Web_1\" is not a valid name", line: 3),
        Case(rule: "scope: a cluster kind has no project", manifest: "apiVersion: stratus/v1\nkind: User\nmetadata: {name: bob, project: small}\nspec: {}\n", expected: "User is cluster-scoped", line: 3),
        Case(rule: "scope: a project kind needs one", manifest: "apiVersion: stratus/v1\nkind: Volume\nmetadata: {name: v}\nspec: {sizeGB: 1}\n", expected: "missing required field \"project\"", line: 3),
        Case(rule: "validation", manifest: "apiVersion: stratus/v1\nkind: Network\nmetadata: {name: n, project: small}\nspec: {cidr: 10.0.0.1/24}\n", expected: "spec.cidr", line: 4),
        Case(rule: "references", manifest: "apiVersion: stratus/v1\nkind: Instance\nmetadata: {name: two, project: small}\nspec: {image: debain, instanceType: m1.tiny}\n", expected: "did you mean \"debian\"?", line: 4),
        Case(rule: "labels: at most 50 (tags)", manifest: group(labels: (0..<51).map { "k\($0): v" }.joined(separator: ", ")), expected: "at most 50 labels (tags), got 51", line: 3, code: "TagLimitExceeded"),
        Case(rule: "labels: keys of at most 128 characters", manifest: group(labels: String(repeating: "k", count: 129) + ": v"), expected: "1 to 128 characters, got 129", line: 3, code: "InvalidParameterValue"),
        Case(rule: "labels: no aws: prefix", manifest: group(labels: "\"aws:name\": web"), expected: "reserved", line: 3, code: "InvalidParameterValue"),
        Case(rule: "labels: no control characters", manifest: group(labels: "name: \"we\\x01b\""), expected: "control character", line: 3, code: "InvalidParameterValue"),
        Case(rule: "rules per security group", manifest: "apiVersion: stratus/v1\nkind: SecurityGroup\nmetadata: {name: big, project: small}\nspec:\n  ingress: [" + (1...61).map { "{protocol: tcp, fromPort: \($0), toPort: \($0)}" }.joined(separator: ", ") + "]\n", expected: "at most 60 rules, got 61", line: 5, code: "RulesPerSecurityGroupLimitExceeded"),
        Case(rule: "security group description: at most 255 characters", manifest: "apiVersion: stratus/v1\nkind: SecurityGroup\nmetadata: {name: g, project: small}\nspec: {description: \(String(repeating: "d", count: 256))}\n", expected: "spec.description: at most 255 characters, got 256", line: 4),
        Case(rule: "key pair: the key data must be a key", manifest: key(sshKey("ssh-ed25519", [Array("ssh-ed25519".utf8), [UInt8](repeating: 7, count: 16)])), expected: "not a valid ssh-ed25519 key: expected one 32-byte key", line: 4),
        Case(rule: "key pair: RSA of at least 1024 bits", manifest: key(sshKey("ssh-rsa", [Array("ssh-rsa".utf8), [1, 0, 1], [0, 0x80] + [UInt8](repeating: 1, count: 63)])), expected: "the modulus has 512 bits; 1024 to 16384 are accepted", line: 4),
        Case(rule: "key pair: the type inside the key data", manifest: key(sshKey("ssh-rsa", [Array("ssh-ed25519".utf8), [UInt8](repeating: 7, count: 32)])), expected: "names another type than \"ssh-rsa\"", line: 4),
        Case(rule: "key pair: a bounded line", manifest: key("ssh-rsa " + String(repeating: "A", count: 10_000)), expected: "at most 8192 bytes", line: 4),
        Case(rule: "quota: instances", manifest: instances(["m1.tiny", "m1.tiny"]), expected: "project small's quota allows 2 instances; this would make 3 (1 now, +2 from this apply)", line: 8, code: "InstanceLimitExceeded"),
        Case(rule: "quota: cores", manifest: instances(["m1.large"]), expected: "allows 3 cores; this would make 5", line: 3, code: "InstanceLimitExceeded"),
        Case(rule: "quota: RAM", manifest: instances(["m1.medium"]), expected: "allows 2048 MB of RAM; this would make 2560", line: 3, code: "InstanceLimitExceeded"),
        Case(rule: "quota: volumes", manifest: volumes([1, 1]), expected: "allows 1 volumes; this would make 2", line: 8, code: "VolumeLimitExceeded"),
        Case(rule: "quota: gigabytes", manifest: volumes([6]), expected: "allows 5 GB of volumes; this would make 6", line: 3, code: "VolumeLimitExceeded"),
        Case(rule: "quota: addresses", manifest: "apiVersion: stratus/v1\nkind: Address\nmetadata: {name: a1, project: small}\nspec: {}\n---\napiVersion: stratus/v1\nkind: Address\nmetadata: {name: a2, project: small}\nspec: {}\n", expected: "allows 1 addresses", line: 8, code: "AddressLimitExceeded"),
        Case(rule: "quota: security groups", manifest: "apiVersion: stratus/v1\nkind: SecurityGroup\nmetadata: {name: g1, project: small}\nspec: {}\n---\napiVersion: stratus/v1\nkind: SecurityGroup\nmetadata: {name: g2, project: small}\nspec: {}\n", expected: "allows 1 security groups", line: 8, code: "SecurityGroupLimitExceeded"),
    ]

    static func group(labels: String) -> String {
        "apiVersion: stratus/v1\nkind: SecurityGroup\nmetadata: {name: tagged, project: small, labels: {\(labels)}}\nspec: {}\n"
    }

    static func instances(_ types: [String]) -> String {
        types.enumerated().map { "apiVersion: stratus/v1\nkind: Instance\nmetadata: {name: extra-\($0.offset), project: small}\nspec: {image: debian, instanceType: \($0.element)}\n" }.joined(separator: "---\n")
    }

    static func volumes(_ sizes: [Int]) -> String {
        sizes.enumerated().map { "apiVersion: stratus/v1\nkind: Volume\nmetadata: {name: v\($0.offset), project: small}\nspec: {sizeGB: \($0.element)}\n" }.joined(separator: "---\n")
    }

    static func seeded() throws -> Store {
        let store = try makeStore()
        try store.apply(try documents(base), options: ApplyOptions())
        return store
    }

    static func load(_ text: String) -> Result<[ManifestDocument], ManifestErrors> {
        Result { try ManifestLoader.load([ManifestSource(name: "case.yaml", data: Data(text.utf8))]) }.mapError { $0 as! ManifestErrors }
    }

    @Test("apply and plan refuse the set at the rule's position, and nothing changes", arguments: cases)
    func manifest(_ rule: Case) throws {
        let store = try Self.seeded()
        let before = try store.list(kind: nil).map(\.key)
        let errors: ManifestErrors
        switch Self.load(rule.manifest) {
        case .failure(let failed):
            errors = failed  // the stateless rules stop the loader
        case .success(let documents):
            let planned = try #require(throws: ManifestErrors.self) { try store.plan(documents, options: ApplyOptions()) }
            errors = try #require(throws: ManifestErrors.self) { try store.apply(documents, options: ApplyOptions()) }
            #expect(planned.errors == errors.errors, "plan and apply admit alike")
        }
        let error = try #require(errors.errors.first)
        #expect(error.description.contains(rule.expected), "\(error)")
        #expect(error.location?.file == "case.yaml" && error.location?.line == rule.line, "\(error)")
        #expect(error.code == rule.code)
        #expect(try store.list(kind: nil).map(\.key) == before, "a refused set writes nothing")
    }

    @Test("resources made in code pass the same stateless rules (the EC2 API's path)")
    func inCode() throws {
        let badName = Resource(metadata: ObjectMeta(name: "Web Servers", project: "small"), spec: .securityGroup(SecurityGroupSpec()))
        #expect(throws: ManifestErrors.self) { try Admission.document(for: badName) }
        let clustered = Resource(metadata: ObjectMeta(name: "n1", project: "small"), spec: .node(NodeSpec(zone: "nova")))
        let error = try #require(throws: ManifestErrors.self) { try Admission.document(for: clustered, origin: "<node registration>") }
        #expect(error.errors.first?.location?.file == "<node registration>")
        #expect(error.errors.first?.path == "metadata.project")
        let good = try Admission.document(for: Resource(metadata: ObjectMeta(name: "web", project: "small"), spec: .securityGroup(SecurityGroupSpec())))
        #expect(good.specJSON.contains("ingress"), "defaults are filled in: \(good.specJSON)")
    }

    @Test("a quota is checked against the store and the set together, and only growth is refused")
    func quotaBookkeeping() throws {
        let store = try Self.seeded()
        // Replacing the one instance's type within the cores quota is fine; a prune frees room.
        try store.apply(try documents(Self.base.replacingOccurrences(of: "{image: debian, instanceType: m1.tiny}", with: "{image: debian, instanceType: m1.tiny}\n---\n" + Self.instances(["m1.tiny"]))), options: ApplyOptions())
        #expect(throws: ManifestErrors.self) { try store.apply(try documents(Self.instances(["m1.tiny", "m1.tiny", "m1.tiny"])), options: ApplyOptions()) }
        // Lowering the quota below what is used refuses nothing unrelated.
        let lowered = Self.base.replacingOccurrences(of: "instances: 2,", with: "instances: 1,")
        try store.apply(try documents(lowered + "---\n" + Self.instances(["m1.tiny"])), options: ApplyOptions())
        try store.apply(try documents("apiVersion: stratus/v1\nkind: SecurityGroup\nmetadata: {name: g, project: small}\nspec: {}\n"), options: ApplyOptions(applySet: "other"))
        // A deleted instance no longer counts.
        _ = try store.delete([ResourceKey(kind: .instance, project: "small", name: "extra-0"), ResourceKey(kind: .instance, project: "small", name: "one")])
        try store.apply(try documents(Self.instances(["m1.tiny"]).replacingOccurrences(of: "extra-0", with: "fresh")), options: ApplyOptions(applySet: "more"))
    }

    @Test("a reference the stored resource holds stays valid after its target is deleted; a new one must resolve")
    func heldReferences() throws {
        let store = try Self.seeded()
        let key = "apiVersion: stratus/v1\nkind: KeyPair\nmetadata: {name: deploy, project: small}\nspec: {user: alice, publicKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZ2Yk1cVpgZVDSkqMJYmfb0zI6D/6s8vGN0wVxyjG2k a}\n"
        func instance(_ name: String, labels: String = "{}") -> String {
            "apiVersion: stratus/v1\nkind: Instance\nmetadata: {name: \(name), project: small, labels: \(labels)}\nspec: {image: debian, instanceType: m1.tiny, keyName: deploy}\n"
        }
        try store.apply(try documents(key + "---\n" + instance("keyed")), options: ApplyOptions(applySet: "keys"))
        let deploy = ResourceKey(kind: .keyPair, project: "small", name: "deploy")
        _ = try store.delete([deploy])
        try store.finalizeDeletion(deploy)
        // The instance keeps its key: changing its labels (what EC2 CreateTags does) still works.
        try store.apply(try documents(instance("keyed", labels: "{role: web}")), options: ApplyOptions(applySet: "keys"))
        #expect(try store.get(ResourceKey(kind: .instance, project: "small", name: "keyed"))?.metadata.labels == ["role": "web"])
        // A new instance naming the deleted key is refused, at the field.
        let error = try #require(throws: ManifestErrors.self) { try store.apply(try documents(instance("fresh")), options: ApplyOptions(applySet: "other")) }
        #expect(error.errors.first?.path == "spec.keyName" && error.errors.first?.message.contains("KeyPair small/deploy does not exist") == true)
    }

    @Test("authorization runs on every change of the plan, prunes included, in the apply's transaction")
    func authorization() throws {
        let store = try Self.seeded()
        struct Denied: Error { var key: ResourceKey }
        var options = ApplyOptions(applySet: "default", prune: true)
        options.authorize = { change in if change.action == .delete { throw Denied(key: change.key) } }
        let withoutImage = Self.base.replacingOccurrences(of: "kind: Image\nmetadata: {name: debian, project: small}\nspec: {source: /images/debian.qcow2}\n---\napiVersion: stratus/v1\n", with: "")
        let denied = try #require(throws: Denied.self) { try store.apply(try documents(withoutImage), options: options) }
        #expect(denied.key.kind == .image)
        #expect(try store.get(ResourceKey(kind: .image, project: "small", name: "debian"))?.isTerminating == false)
        let recorder = Recorder()
        options.prune = false
        options.authorize = { change in recorder.add(change.action) }
        _ = try store.plan(try documents(Self.base + "---\n" + Self.volumes([1])), options: options)
        #expect(recorder.actions == [.create], "the volume is asked about; the unchanged resources are not")
    }

    final class Recorder: @unchecked Sendable {  // one test thread writes, then reads
        var actions: [ChangeAction] = []
        func add(_ action: ChangeAction) { actions.append(action) }
    }
}
