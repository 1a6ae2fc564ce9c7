import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import StratusModel
import StratusStore
import Testing

@testable import StratusEC2

/// EC2 as clients written for AWS EC2-classic expect it (issue 12): deregistered images, EC2
/// names, default groups, error codes. Through the router test client, as alice (sysadmin).
@Suite struct EC2FidelityTests {
    /// One answer: HTTP status, the error code if any, and the body.
    struct Answer {
        let status: Int
        let code: String?
        let body: String
    }

    /// Sends each form in order as `user` and returns the answers.
    static func send(_ store: Store, _ forms: [String], as user: String = "alice", project: String = "acme", publicRange: IPv4Network = EC2API.defaultPublicRange) async throws -> [Answer] {
        try await EC2RouterTests.app(store, publicRange: publicRange).test(.router) { client in
            var answers: [Answer] = []
            for form in forms {
                let (headers, body) = try EC2RouterTests.signed(store, form + "&Version=2016-11-15", as: user, project: project)
                answers.append(try await client.execute(uri: "/", method: .post, headers: headers, body: body) { response in
                    Answer(status: Int(response.status.code), code: EC2RouterTests.code(response), body: String(buffer: response.body))
                })
            }
            return answers
        }
    }

    static func apply(_ store: Store, _ yaml: String, set: String) throws -> ApplyPlan {
        try store.apply(try ManifestLoader.load([ManifestSource(name: "\(set).yaml", data: Data(yaml.utf8))]), options: ApplyOptions(applySet: set))
    }

    static let imageAndInstance = """
        apiVersion: stratus/v1
        kind: Image
        metadata: {name: debian, project: acme}
        spec: {source: /images/debian.qcow2}
        ---
        apiVersion: stratus/v1
        kind: Instance
        metadata: {name: web, project: acme}
        spec: {image: debian, instanceType: m1.tiny}
        """

    @Test("DeregisterImage removes the image at once; one a manifest's instance names is refused and stays")
    func deregister() async throws {
        let store = try EC2RouterTests.store()
        let plan = try Self.apply(store, Self.imageAndInstance, set: "web")
        let named = try #require(plan.changes.first { $0.key.kind == .image }?.id)
        let register = try await Self.send(store, ["Action=RegisterImage&Name=scratch&ImageLocation=/images/scratch.qcow2"])[0]
        let scratch = try #require(register.body.firstMatch(of: /<imageId>(ami-[0-9a-f]+)<\/imageId>/)?.1).description
        let answers = try await Self.send(store, [
            "Action=DeregisterImage&ImageId=\(scratch)",
            "Action=DescribeImages&ImageId.1=\(scratch)",
            "Action=DescribeImages",
            "Action=DeregisterImage&ImageId=\(named)",
            "Action=DescribeImages&ImageId.1=\(named)",
            "Action=RunInstances&ImageId=\(scratch)&MinCount=1&MaxCount=1&InstanceType=m1.tiny",
        ])
        #expect(answers[0].status == 200 && answers[0].body.contains("<return>true</return>"))
        #expect(answers[1].code == "InvalidAMIID.NotFound", "\(answers[1].body)")
        #expect(!answers[2].body.contains(scratch) && answers[2].body.contains(named), "\(answers[2].body)")
        #expect(answers[3].status == 400 && answers[3].code == "OperationNotPermitted", "\(answers[3].body)")
        #expect(answers[3].body.contains("instance web of project acme") && answers[3].body.contains("manifest set web"), "\(answers[3].body)")
        #expect(answers[4].status == 200 && answers[4].body.contains("<imageState>available</imageState>"))
        #expect(answers[5].code == "InvalidAMIID.NotFound", "a deregistered image cannot be launched: \(answers[5].body)")
    }

    @Test("AllocateAddress hands out the pool's addresses at once; a held one cannot be claimed; an exhausted pool is AddressLimitExceeded; an associated address is the instance's ipAddress")
    func elasticAddresses() async throws {
        let store = try EC2RouterTests.store()
        let plan = try Self.apply(store, Self.imageAndInstance, set: "web")
        let instance = try #require(plan.changes.first { $0.key.kind == .instance }?.id)
        guard case .success(let range) = IPv4Network.parse("198.51.100.0/30") else { return }
        let answers = try await Self.send(store, [
            "Action=AllocateAddress",
            "Action=AllocateAddress&Domain=standard",
            "Action=AllocateAddress",
            "Action=ReleaseAddress&PublicIp=198.51.100.1",
            "Action=AllocateAddress&Address=198.51.100.2",
            "Action=AllocateAddress&Address=198.51.100.1",
            "Action=AssociateAddress&PublicIp=198.51.100.1&InstanceId=\(instance)",
            "Action=DescribeInstances&InstanceId.1=\(instance)",
            "Action=DescribeInstances&Filter.1.Name=ip-address&Filter.1.Value.1=198.51.100.1",
            "Action=DescribeAddresses&PublicIp.1=198.51.100.1",
            "Action=AllocateAddress&Address=not-an-ip",
        ], publicRange: range)
        #expect(Self.first("publicIp", in: answers[0].body) == "198.51.100.1" && Self.first("publicIp", in: answers[1].body) == "198.51.100.2", "the pool's host addresses in order: \(answers[0].body) \(answers[1].body)")
        #expect(answers[2].code == "AddressLimitExceeded" && answers[2].body.contains("198.51.100.0/30"), "\(answers[2].body)")
        #expect(answers[3].status == 200)
        #expect(answers[4].code == "InvalidAddress.InUse", "a held address cannot be claimed: \(answers[4].body)")
        #expect(answers[5].status == 200 && Self.first("publicIp", in: answers[5].body) == "198.51.100.1", "a released one can: \(answers[5].body)")
        #expect(answers[6].status == 200, "\(answers[6].body)")
        #expect(answers[7].body.contains("<ipAddress>198.51.100.1</ipAddress>"), "DescribeInstances shows the public IP: \(answers[7].body)")
        #expect(answers[8].body.contains(instance), "and filters by it: \(answers[8].body)")
        #expect(answers[9].body.contains("<instanceId>\(instance)</instanceId>"), "\(answers[9].body)")
        #expect(answers[10].code == "InvalidParameterValue", "\(answers[10].body)")
        #expect(try store.list(kind: .address, project: "acme").filter { !$0.isTerminating }.count == 2, "failed allocations leave no address behind")
        #expect(try store.list(kind: .address, project: "acme").count == 3, "only the released one waits for its teardown")
    }

    /// The text of the first `<tag>` in `body`.
    static func first(_ tag: String, in body: String) -> String? {
        guard let start = body.range(of: "<\(tag)>"), let end = body.range(of: "</\(tag)>", range: start.upperBound..<body.endIndex) else { return nil }
        return String(body[start.upperBound..<end.lowerBound])
    }

    @Test("EC2 names with spaces and upper case work in every action that takes a name, and map to DNS-label resources")
    func ec2Names() async throws {
        let store = try EC2RouterTests.store()
        _ = try Self.apply(store, "apiVersion: stratus/v1\nkind: Image\nmetadata: {name: debian, project: acme}\nspec: {source: /images/debian.qcow2}\n", set: "img")
        let ami = try #require(try store.get(ResourceKey(kind: .image, project: "acme", name: "debian"))?.metadata.id)
        let material = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZ2Yk1cVpgZVDSkqMJYmfb0zI6D/6s8vGN0wVxyjG2k".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let answers = try await Self.send(store, [
            "Action=CreateKeyPair&KeyName=Test%20key&KeyType=ed25519",
            "Action=ImportKeyPair&KeyName=My%20Laptop&PublicKeyMaterial=\(material)",
            "Action=CreateSecurityGroup&GroupName=Web%20Servers&GroupDescription=web",
            "Action=AuthorizeSecurityGroupIngress&GroupName=Web%20Servers&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=80&IpPermissions.1.ToPort=80&IpPermissions.1.Groups.1.GroupName=Web%20Servers",
            "Action=RunInstances&ImageId=\(ami)&MinCount=1&MaxCount=1&InstanceType=m1.tiny&KeyName=Test%20key&SecurityGroup.1=Web%20Servers",
            "Action=DescribeKeyPairs&KeyName.1=Test%20key&KeyName.2=My%20Laptop",
            "Action=DescribeSecurityGroups&GroupName.1=Web%20Servers",
            "Action=DescribeInstances&Filter.1.Name=key-name&Filter.1.Value.1=Test%20key&Filter.2.Name=group-name&Filter.2.Value.1=Web*",
            "Action=DescribeKeyPairs&Filter.1.Name=key-name&Filter.1.Value.1=*Laptop",
            "Action=DeleteSecurityGroup&GroupName=Web%20Servers",
            "Action=CreateKeyPair&KeyName=Test%20key",
            "Action=CreateKeyPair&KeyName=test%20key&KeyType=ed25519",
            "Action=DeleteKeyPair&KeyName=My%20Laptop",
            "Action=DescribeKeyPairs&KeyName.1=My%20Laptop",
            "Action=CreateKeyPair&KeyName=\(String(repeating: "k", count: 256))",
            "Action=CreateSecurityGroup&GroupName=tab%09name&GroupDescription=x",
        ])
        for (index, answer) in answers.prefix(10).enumerated() where index != 9 { #expect(answer.status == 200, "\(index): \(answer.body)") }
        #expect(answers[5].body.contains("<keyName>Test key</keyName>") && answers[5].body.contains("<keyName>My Laptop</keyName>"), "\(answers[5].body)")
        #expect(Self.first("groupName", in: answers[6].body) == "Web Servers", "\(answers[6].body)")
        #expect(answers[6].body.contains("<groups><item><groupName>Web Servers</groupName><groupId>sg-"), "a source group is shown by its EC2 name and id: \(answers[6].body)")
        let instance = answers[7].body
        #expect(Self.first("keyName", in: instance) == "Test key", "\(instance)")
        #expect(instance.contains("<groupSet><item><groupId>sg-") && instance.contains("<groupName>Web Servers</groupName>"), "\(instance)")
        #expect(answers[8].body.contains("<keyName>My Laptop</keyName>") && !answers[8].body.contains("Test key"))
        #expect(answers[9].code == "DependencyViolation", "the instance still uses the group: \(answers[9].body)")
        #expect(answers[10].code == "InvalidKeyPair.Duplicate", "\(answers[10].body)")
        #expect(answers[11].status == 200, "EC2 names are case-sensitive, as on AWS: \(answers[11].body)")
        #expect(answers[12].status == 200 && answers[13].code == "InvalidKeyPair.NotFound", "\(answers[13].body)")
        #expect(answers[14].code == "InvalidParameterValue" && answers[14].body.contains("KeyName"), "a bad name is a name problem, not InvalidKey.Format: \(answers[14].body)")
        #expect(answers[15].code == "InvalidParameterValue" && answers[15].body.contains("GroupName"), "\(answers[15].body)")

        // The resources keep DNS-label names; the EC2 name is stored beside them.
        let pairs = try store.list(kind: .keyPair, project: "acme").filter { $0.metadata.annotations[EC2Name.annotation] != nil && !$0.isTerminating }
        #expect(Set(pairs.map { EC2Name.of($0.metadata) }) == ["Test key", "test key"])
        #expect(pairs.allSatisfy { NameRules.problem(with: $0.key.name, dotted: false) == nil && $0.key.name.hasPrefix("test-key-") })
        #expect(Set(pairs.map(\.key.name)).count == 2, "two EC2 names that differ only in case map to two resources")
        let group = try #require(try store.list(kind: .securityGroup, project: "acme").first { EC2Name.of($0.metadata) == "Web Servers" })
        guard case .instance(let spec)? = try store.list(kind: .instance, project: "acme").first?.resource.spec else { Issue.record("no instance"); return }
        #expect(spec.securityGroups == [group.key.name] && spec.keyName == pairs.first { EC2Name.of($0.metadata) == "Test key" }?.key.name)
    }

    @Test("Name tags: set by TagSpecification on every create that takes one and by CreateTags on key pairs and snapshots, shown in each Describe's tagSet and by DescribeTags")
    func nameTags() async throws {
        let store = try EC2RouterTests.store()
        _ = try Self.apply(store, "apiVersion: stratus/v1\nkind: Volume\nmetadata: {name: data, project: acme}\nspec: {sizeGB: 1}\n", set: "vol")
        let volume = try #require(try store.get(ResourceKey(kind: .volume, project: "acme", name: "data"))?.metadata.id)
        let material = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZ2Yk1cVpgZVDSkqMJYmfb0zI6D/6s8vGN0wVxyjG2k".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        func name(_ type: String, _ value: String) -> String { "TagSpecification.1.ResourceType=\(type)&TagSpecification.1.Tag.1.Key=Name&TagSpecification.1.Tag.1.Value=\(value)" }
        let made = try await Self.send(store, [
            "Action=CreateKeyPair&KeyName=Made%20key&KeyType=ed25519&" + name("key-pair", "made"),
            "Action=ImportKeyPair&KeyName=laptop&PublicKeyMaterial=\(material)&" + name("key-pair", "imported"),
            "Action=CreateSecurityGroup&GroupName=Web%20Servers&GroupDescription=web&" + name("security-group", "front"),
            "Action=CreateSnapshot&VolumeId=\(volume)&" + name("snapshot", "nightly"),
            "Action=CreateVolume&Size=1&AvailabilityZone=nova&" + name("volume", "scratch"),
            "Action=CreateSecurityGroup&GroupName=other&GroupDescription=x&" + name("instance", "wrong"),
            "Action=CreateKeyPair&KeyName=k2&TagSpecification.1.Tag.1.Key=aws:reserved&TagSpecification.1.Tag.1.Value=x",
        ])
        for answer in made.prefix(5) { #expect(answer.status == 200, "\(answer.body)") }
        #expect(made[5].code == "InvalidParameterValue" && made[5].body.contains("ResourceType"), "a TagSpecification for another type is refused: \(made[5].body)")
        #expect(made[6].code == "InvalidParameterValue" && made[6].body.contains("aws:"), "\(made[6].body)")
        #expect(try store.named(.securityGroup, ec2Name: "other", project: "acme") == nil && store.named(.keyPair, ec2Name: "k2", project: "acme") == nil, "a refused create made nothing")
        let key = try #require(Self.first("keyPairId", in: made[1].body))
        let snapshot = try #require(Self.first("snapshotId", in: made[3].body))
        let tagged = try await Self.send(store, [
            "Action=CreateTags&ResourceId.1=\(key)&ResourceId.2=\(volume)&Tag.1.Key=Name&Tag.1.Value=renamed",
            "Action=CreateTags&ResourceId.1=\(snapshot)&Tag.1.Key=team&Tag.1.Value=ops",
            "Action=DescribeKeyPairs&KeyName.1=laptop",
            "Action=DescribeKeyPairs&Filter.1.Name=tag:Name&Filter.1.Value.1=made",
            "Action=DescribeSecurityGroups&GroupName.1=Web%20Servers",
            "Action=DescribeSnapshots&SnapshotId.1=\(snapshot)",
            "Action=DescribeVolumes&VolumeId.1=\(volume)",
            "Action=DescribeTags&Filter.1.Name=resource-type&Filter.1.Value.1=key-pair",
            "Action=DescribeTags&Filter.1.Name=resource-id&Filter.1.Value.1=\(snapshot)",
            "Action=DeleteTags&ResourceId.1=\(key)&Tag.1.Key=Name",
            "Action=DescribeKeyPairs&KeyPairId.1=\(key)",
            "Action=DescribeKeyPairs&KeyPairId.1=key-0123456789abcdef",
        ])
        for answer in tagged.prefix(11) { #expect(answer.status == 200, "\(answer.body)") }
        func tag(_ key: String, _ value: String) -> String { "<item><key>\(key)</key><value>\(value)</value></item>" }
        #expect(tagged[2].body.contains("<tagSet>" + tag("Name", "renamed") + "</tagSet>"), "CreateTags on a key pair: \(tagged[2].body)")
        #expect(tagged[3].body.contains("<keyName>Made key</keyName>") && !tagged[3].body.contains("laptop"), "\(tagged[3].body)")
        #expect(tagged[4].body.contains(tag("Name", "front")), "\(tagged[4].body)")
        #expect(tagged[5].body.contains(tag("Name", "nightly")) && tagged[5].body.contains(tag("team", "ops")), "\(tagged[5].body)")
        #expect(tagged[6].body.contains(tag("Name", "renamed")), "\(tagged[6].body)")
        #expect(tagged[7].body.contains("<resourceId>\(key)</resourceId><resourceType>key-pair</resourceType><key>Name</key><value>renamed</value>") && tagged[7].body.contains("<value>made</value>"), "\(tagged[7].body)")
        #expect(tagged[8].body.contains("<resourceType>snapshot</resourceType><key>team</key>"), "\(tagged[8].body)")
        #expect(tagged[10].body.contains("<keyName>laptop</keyName>") && tagged[10].body.contains("<tagSet/>") || tagged[10].body.contains("<tagSet></tagSet>"), "DeleteTags on a key pair: \(tagged[10].body)")
        #expect(tagged[11].code == "InvalidKeyPair.NotFound", "\(tagged[11].body)")
    }

    @Test("two projects may use the same EC2 name; a manifest may set one, and may not take one another resource holds")
    func ec2NamesInManifests() async throws {
        let store = try EC2RouterTests.store()
        _ = try Self.apply(store, """
            apiVersion: stratus/v1
            kind: User
            metadata: {name: carol}
            spec: {projects: [{project: zeta, roles: [sysadmin]}]}
            ---
            apiVersion: stratus/v1
            kind: Project
            metadata: {name: zeta}
            spec: {manager: carol}
            ---
            apiVersion: stratus/v1
            kind: SecurityGroup
            metadata: {name: web, project: acme, annotations: {ec2.stratus/name: Web Servers}}
            spec: {description: from a manifest}
            """, set: "zeta")
        let acme = try await Self.send(store, ["Action=DescribeSecurityGroups&GroupName.1=Web%20Servers", "Action=CreateSecurityGroup&GroupName=Web%20Servers&GroupDescription=x"])
        #expect(acme[0].status == 200 && acme[0].body.contains("from a manifest"), "\(acme[0].body)")
        #expect(acme[1].code == "InvalidGroup.Duplicate", "\(acme[1].body)")
        let zeta = try await Self.send(store, ["Action=CreateSecurityGroup&GroupName=Web%20Servers&GroupDescription=zeta%27s", "Action=DescribeSecurityGroups&GroupName.1=Web%20Servers"], as: "carol", project: "zeta")
        #expect(zeta[0].status == 200 && zeta[1].body.contains("zeta&apos;s") || zeta[1].body.contains("zeta's"), "\(zeta.map(\.body))")

        // Another acme group may not claim "Web Servers", nor "web" (the first group's resource name is no longer its EC2 name, so that one is free).
        let clash = "apiVersion: stratus/v1\nkind: SecurityGroup\nmetadata: {name: web2, project: acme, annotations: {ec2.stratus/name: Web Servers}}\nspec: {}\n"
        #expect(throws: ManifestErrors.self) { try Self.apply(store, clash, set: "clash") }
        do {
            _ = try Self.apply(store, clash, set: "clash")
        } catch let errors as ManifestErrors {
            #expect(errors.errors.first?.message.contains("already SecurityGroup acme/web's") == true, "\(errors)")
            #expect(errors.errors.first?.code == "InvalidGroup.Duplicate")
        }
        #expect(try store.get(ResourceKey(kind: .securityGroup, project: "acme", name: "web2")) == nil, "a failed apply changes nothing")
        _ = try Self.apply(store, "apiVersion: stratus/v1\nkind: SecurityGroup\nmetadata: {name: other, project: acme, annotations: {ec2.stratus/name: web}}\nspec: {}\n", set: "free")

        // What admission refuses: an EC2 name on a kind EC2 names by id, a name over 255 characters.
        let bad = [
            "apiVersion: stratus/v1\nkind: Volume\nmetadata: {name: v, project: acme, annotations: {ec2.stratus/name: Data}}\nspec: {sizeGB: 1}\n",
            "apiVersion: stratus/v1\nkind: KeyPair\nmetadata: {name: k, project: acme, annotations: {ec2.stratus/name: \(String(repeating: "x", count: 256))}}\nspec: {user: alice, publicKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZ2Yk1cVpgZVDSkqMJYmfb0zI6D/6s8vGN0wVxyjG2k}\n",
        ]
        for (index, yaml) in bad.enumerated() {
            #expect(throws: ManifestErrors.self, "\(index)") { try ManifestLoader.load([ManifestSource(name: "bad.yaml", data: Data(yaml.utf8))]) }
        }
    }

    @Test("EC2Name maps every EC2 name to a valid, distinct resource name")
    func nameMapping() {
        let names = ["web", "Web", "Web Servers", "web servers", "web-servers", "  ", "!!!", String(repeating: "A", count: 255), "a_b", "a b", "a-b"]
        let mapped = names.map(EC2Name.resourceName(for:))
        for (name, resource) in zip(names, mapped) {
            #expect(NameRules.problem(with: resource, dotted: false) == nil, "\(name) → \(resource)")
        }
        #expect(Set(mapped).count == names.count, "\(mapped)")
        #expect(EC2Name.resourceName(for: "web") == "web" && EC2Name.resourceName(for: "a-b") == "a-b", "a valid name maps to itself")
    }

    @Test("every project has a default security group: made with it, joined by instances launched without groups, not deletable, gone with the project")
    func defaultGroup() async throws {
        let store = try EC2RouterTests.store()
        let key = ResourceKey(kind: .securityGroup, project: "acme", name: Store.defaultGroup)
        let group = try #require(try store.get(key), "the project's default group is made with it")
        #expect(group.metadata.manager == "stratus" && group.metadata.applySet == nil && group.metadata.id?.hasPrefix("sg-") == true)
        _ = try Self.apply(store, "apiVersion: stratus/v1\nkind: Image\nmetadata: {name: debian, project: acme}\nspec: {source: /images/debian.qcow2}\n", set: "img")
        let ami = try #require(try store.get(ResourceKey(kind: .image, project: "acme", name: "debian"))?.metadata.id)
        let answers = try await Self.send(store, [
            "Action=DescribeSecurityGroups&GroupName.1=default",
            "Action=DeleteSecurityGroup&GroupName=default",
            "Action=DeleteSecurityGroup&GroupId=\(group.metadata.id!)",
            "Action=RunInstances&ImageId=\(ami)&MinCount=1&MaxCount=1&InstanceType=m1.tiny",
            "Action=DescribeInstances&Filter.1.Name=group-name&Filter.1.Value.1=default",
            "Action=CreateSecurityGroup&GroupName=default&GroupDescription=x",
        ])
        #expect(answers[0].status == 200 && Self.first("groupName", in: answers[0].body) == "default", "\(answers[0].body)")
        #expect(answers[1].code == "CannotDelete" && answers[2].code == "CannotDelete", "\(answers[1].body) \(answers[2].body)")
        let run = answers[3].body
        #expect(run.contains("<groupSet><item><groupId>\(group.metadata.id!)</groupId><groupName>default</groupName></item></groupSet><instancesSet>"), "the reservation's groupSet: \(run)")
        let described = answers[4].body
        #expect(described.components(separatedBy: "<groupName>default</groupName>").count == 3, "in the reservation's and the instance's groupSet: \(described)")
        #expect(answers[5].code == "InvalidGroup.Reserved", "the name default is reserved, as on EC2-classic: \(answers[5].body)")

        // The store refuses too (stratus delete), unless the project goes, and then the group goes with it.
        #expect(throws: StoreError.defaultGroup(key)) { try store.delete([key]) }
        #expect(try store.get(key)?.isTerminating == false)
        let project = ResourceKey(kind: .project, project: nil, name: "acme")
        _ = try store.delete([project])
        #expect(try store.get(key)?.isTerminating == true)
    }

    @Test("a project pruned from its set takes its default group; a store from before default groups gets them at migration")
    func defaultGroupLifecycle() throws {
        let store = try Store(writer: DatabaseQueue())
        let yaml = "apiVersion: stratus/v1\nkind: User\nmetadata: {name: dora}\nspec: {}\n---\napiVersion: stratus/v1\nkind: Project\nmetadata: {name: beta}\nspec: {manager: dora}\n"
        let plan = try store.apply(try ManifestLoader.load([ManifestSource(name: "p.yaml", data: Data(yaml.utf8))]), options: ApplyOptions(applySet: "p"))
        #expect(plan.count(.create) == 2, "the default group is not a change of the set")
        let group = ResourceKey(kind: .securityGroup, project: "beta", name: Store.defaultGroup)
        #expect(try store.get(group) != nil)
        // Applying the set again leaves it alone; pruning the project from the set takes it.
        #expect(try store.apply(try ManifestLoader.load([ManifestSource(name: "p.yaml", data: Data(yaml.utf8))]), options: ApplyOptions(applySet: "p", prune: true)).count(.delete) == 0)
        let userOnly = String(yaml.prefix { $0 != "-" })
        _ = try store.apply(try ManifestLoader.load([ManifestSource(name: "p.yaml", data: Data(userOnly.utf8))]), options: ApplyOptions(applySet: "p", prune: true, allowMassDelete: true))
        #expect(try store.get(group)?.isTerminating == true)
    }

    @Test("a create never overwrites another resource: an EC2 name equal to another key's or group's resource name is a duplicate, and the first is unchanged")
    func createNeverOverwrites() async throws {
        let store = try EC2RouterTests.store()
        let first = try await Self.send(store, ["Action=CreateKeyPair&KeyName=Alice%20Key&KeyType=ed25519", "Action=CreateSecurityGroup&GroupName=Web%20Servers&GroupDescription=first"])
        #expect(first.allSatisfy { $0.status == 200 })
        let pair = try #require(try store.list(kind: .keyPair, project: "acme").first { EC2Name.of($0.metadata) == "Alice Key" })
        let group = try #require(try store.list(kind: .securityGroup, project: "acme").first { EC2Name.of($0.metadata) == "Web Servers" })
        let answers = try await Self.send(store, [
            "Action=CreateKeyPair&KeyName=\(pair.key.name)&KeyType=ed25519",
            "Action=ImportKeyPair&KeyName=\(pair.key.name)&PublicKeyMaterial=" + "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZ2Yk1cVpgZVDSkqMJYmfb0zI6D/6s8vGN0wVxyjG2k".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!,
            "Action=CreateSecurityGroup&GroupName=\(group.key.name)&GroupDescription=second",
        ], as: "bob")
        #expect(answers[0].code == "InvalidKeyPair.Duplicate" && answers[1].code == "InvalidKeyPair.Duplicate", "\(answers.map(\.body))")
        #expect(answers[2].code == "InvalidGroup.Duplicate" || answers[2].code == "UnauthorizedOperation", "\(answers[2].body)")
        let after = try #require(try store.get(pair.key))
        #expect(after.resource.spec == pair.resource.spec && EC2Name.of(after.metadata) == "Alice Key", "the first key pair is unchanged")
        #expect(try store.get(group.key)?.resource.spec == group.resource.spec)
    }

    @Test("a project applied again while it is being deleted keeps its default group")
    func defaultGroupSurvivesRecreate() throws {
        let store = try Store(writer: DatabaseQueue())
        let yaml = "apiVersion: stratus/v1\nkind: User\nmetadata: {name: dora}\nspec: {}\n---\napiVersion: stratus/v1\nkind: Project\nmetadata: {name: beta}\nspec: {manager: dora}\n"
        _ = try store.apply(try ManifestLoader.load([ManifestSource(name: "p.yaml", data: Data(yaml.utf8))]), options: ApplyOptions(applySet: "p"))
        let group = ResourceKey(kind: .securityGroup, project: "beta", name: Store.defaultGroup)
        _ = try store.delete([ResourceKey(kind: .project, project: nil, name: "beta")])
        #expect(try store.get(group)?.isTerminating == true)
        _ = try store.apply(try ManifestLoader.load([ManifestSource(name: "p.yaml", data: Data(yaml.utf8))]), options: ApplyOptions(applySet: "p"))
        #expect(try store.get(group)?.isTerminating == false, "the deletion of the project was cancelled, and its group's with it")
    }
}
