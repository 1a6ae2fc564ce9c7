import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import Logging
import HummingbirdTesting
import NIOCore
import StratusIdentity
import StratusModel
import StratusStore
import StratusTestSupport
import Testing

@testable import StratusEC2

/// The EC2 Query API's error paths through Hummingbird's router test client (no socket).
@Suite struct EC2RouterTests {
    static let seed = """
        apiVersion: stratus/v1
        kind: User
        metadata: {name: alice}
        spec: {projects: [{project: acme, roles: [sysadmin]}]}
        ---
        apiVersion: stratus/v1
        kind: User
        metadata: {name: bob}
        spec: {projects: [{project: acme, roles: [developer]}]}
        ---
        apiVersion: stratus/v1
        kind: Project
        metadata: {name: acme}
        spec: {manager: alice}
        ---
        apiVersion: stratus/v1
        kind: KeyPair
        metadata: {name: deploy, project: acme}
        spec: {user: alice, publicKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZ2Yk1cVpgZVDSkqMJYmfb0zI6D/6s8vGN0wVxyjG2k alice@laptop}
        """

    static func store() throws -> Store {
        let store = try Store(writer: DatabaseQueue())
        try store.apply(try ManifestLoader.load([ManifestSource(name: "seed.yaml", data: Data(seed.utf8))]), options: ApplyOptions(applySet: "seed"))
        return store
    }

    static func app(_ store: Store, publicRange: IPv4Network = EC2API.defaultPublicRange) -> some ApplicationProtocol {
        EC2API(store: store, dataDirectory: NSTemporaryDirectory(), node: nil, endpoint: "", publicRange: publicRange).application(host: "127.0.0.1", port: 0, logger: .init(label: "test")) { _ in }
    }

    /// A form POST signed with SigV4 as `user` in `project`, for `service` and `region`.
    static func signed(_ store: Store, _ form: String, as user: String, project: String = "acme", service: String = "ec2", region: String = "nova") throws -> (HTTPFields, ByteBuffer) {
        let credential = try store.credential(user: user, project: project)
        let body = Data(form.utf8)
        let contentType = "application/x-www-form-urlencoded; charset=utf-8"
        var fields = HTTPFields()
        fields[.contentType] = contentType
        let signer = RequestSigner(accessKey: credential.accessKey, secretKey: credential.secretKey, region: region, service: service)
        for header in signer.headers(method: "POST", url: URL(string: "http://localhost/")!, headers: [("content-type", contentType)], body: body) {
            fields[HTTPField.Name(header.name)!] = header.value
        }
        return (fields, ByteBuffer(bytes: body))
    }

    static func code(_ response: TestResponse) -> String? {
        let text = String(buffer: response.body)
        guard let start = text.range(of: "<Code>"), let end = text.range(of: "</Code>") else { return nil }
        return String(text[start.upperBound..<end.lowerBound])
    }

    @Test("a user removed from a project is refused at once by EC2 reads with the key bound to it")
    func removedMember() async throws {
        let store = try Self.store()
        try await Self.app(store).test(.router) { client in
            let (headers, body) = try Self.signed(store, "Action=DescribeKeyPairs&Version=2016-11-15", as: "bob")
            try await client.execute(uri: "/", method: .post, headers: headers, body: body) { response in
                #expect(response.status == .ok && String(buffer: response.body).contains("deploy"))
            }
            // bob leaves acme; his acme key still verifies, but acts in a project he no longer belongs to.
            let without = Self.seed.replacingOccurrences(of: "spec: {projects: [{project: acme, roles: [developer]}]}", with: "spec: {}")
            try store.apply(try ManifestLoader.load([ManifestSource(name: "seed.yaml", data: Data(without.utf8))]), options: ApplyOptions(applySet: "seed"))
            for action in ["DescribeKeyPairs", "DescribeInstances", "DescribeSecurityGroups", "DescribeImages", "DescribeVolumes", "DescribeAddresses"] {
                let (headers, body) = try Self.signed(store, "Action=\(action)&Version=2016-11-15", as: "bob")
                try await client.execute(uri: "/", method: .post, headers: headers, body: body) { response in
                    let text = String(buffer: response.body)
                    #expect(!text.contains("deploy"), "\(action) showed acme's data: \(text)")
                    #expect(response.status == .forbidden && Self.code(response) == "UnauthorizedOperation", "\(action): \(text)")
                }
            }
        }
    }

    @Test("DeleteKeyPair of another user's key is UnauthorizedOperation, and the key stays")
    func keyPairOwnership() async throws {
        let store = try Self.store()
        try await Self.app(store).test(.router) { client in
            let (headers, body) = try Self.signed(store, "Action=DeleteKeyPair&KeyName=deploy&Version=2016-11-15", as: "bob")
            try await client.execute(uri: "/", method: .post, headers: headers, body: body) { response in
                #expect(response.status == .forbidden && Self.code(response) == "UnauthorizedOperation")
                #expect(String(buffer: response.body).contains("belongs to alice"))
            }
            let (own, ownBody) = try Self.signed(store, "Action=DeleteKeyPair&KeyName=deploy&Version=2016-11-15", as: "alice")
            try await client.execute(uri: "/", method: .post, headers: own, body: ownBody) { response in
                #expect(response.status == .ok)
            }
        }
        let events = try store.events(for: ResourceKey(kind: .keyPair, project: "acme", name: "deploy"))
        #expect(events.contains { $0.message.contains("deleted by alice") })
    }

    @Test("CreateTags beyond AWS's limits is TagLimitExceeded or InvalidParameterValue, and changes nothing")
    func tagLimits() async throws {
        let store = try Self.store()
        let group = try store.apply(try ManifestLoader.load([ManifestSource(name: "g.yaml", data: Data("apiVersion: stratus/v1\nkind: SecurityGroup\nmetadata: {name: web, project: acme}\nspec: {}\n".utf8))]), options: ApplyOptions(applySet: "g"))
        let id = try #require(group.changes.first?.id)
        let many = (1...51).map { "Tag.\($0).Key=k\($0)&Tag.\($0).Value=v" }.joined(separator: "&")
        let cases = [(many, "TagLimitExceeded"), ("Tag.1.Key=" + String(repeating: "k", count: 129) + "&Tag.1.Value=v", "InvalidParameterValue"), ("Tag.1.Key=name&Tag.1.Value=a%00b", "InvalidParameterValue")]
        try await Self.app(store).test(.router) { client in
            for (tags, code) in cases {
                let (headers, body) = try Self.signed(store, "Action=CreateTags&ResourceId.1=\(id)&\(tags)&Version=2016-11-15", as: "alice")
                try await client.execute(uri: "/", method: .post, headers: headers, body: body) { response in
                    #expect(response.status == .badRequest && Self.code(response) == code, "\(String(buffer: response.body).prefix(400))")
                }
            }
        }
        #expect(try store.get(ResourceKey(kind: .securityGroup, project: "acme", name: "web"))?.metadata.labels.isEmpty == true)
    }

    @Test("thousands of random but well-signed requests never get a 5xx", arguments: [UInt64(1), 2, 20261201])
    func fuzz(seed: UInt64) async throws {
        let store = try Self.store()
        let world = """
            apiVersion: stratus/v1
            kind: Image
            metadata: {name: debian, project: acme}
            spec: {source: /images/debian.qcow2}
            ---
            apiVersion: stratus/v1
            kind: Instance
            metadata: {name: web, project: acme}
            spec: {image: debian, instanceType: m1.tiny, keyName: deploy}
            ---
            apiVersion: stratus/v1
            kind: SecurityGroup
            metadata: {name: web, project: acme}
            spec: {ingress: [{protocol: tcp, fromPort: 22, toPort: 22}]}
            ---
            apiVersion: stratus/v1
            kind: Volume
            metadata: {name: data, project: acme}
            spec: {sizeGB: 1}
            ---
            apiVersion: stratus/v1
            kind: Address
            metadata: {name: ip, project: acme}
            spec: {}
            """
        let ids = try store.apply(try ManifestLoader.load([ManifestSource(name: "world.yaml", data: Data(world.utf8))]), options: ApplyOptions(applySet: "world")).changes.compactMap(\.id)
        var generator = SplitMix64(seed: seed)
        let actions = Array(EC2API.actions.keys).sorted() + ["Nonsense", ""]
        let names = ["InstanceId.1", "InstanceId.2", "ImageId", "MinCount", "MaxCount", "InstanceType", "KeyName", "GroupName", "GroupId", "SecurityGroup.1",
                     "Filter.1.Name", "Filter.1.Value.1", "MaxResults", "NextToken", "ResourceId.1", "Tag.1.Key", "Tag.1.Value", "VolumeId", "Size",
                     "AvailabilityZone", "Device", "AllocationId", "PublicIp", "UserData", "PublicKeyMaterial", "Name", "ImageLocation", "Attribute",
                     "LaunchPermission.Add.1.Group", "IpPermissions.1.IpProtocol", "IpPermissions.1.FromPort", "IpPermissions.1.ToPort",
                     "IpPermissions.1.IpRanges.1.CidrIp", "ClientToken", "KernelId", "RamdiskId", "TagSpecification.1.Tag.1.Key", "Placement.AvailabilityZone"]
        let values = ["", "0", "1", "-1", "99999999999999999999", "i-00000000", "i-zz", "ami-12345678", "sg-00000000", "vol-00000000", "m1.tiny", "deploy",
                      "acme", "x", "%00", "*", "?", "../../etc/passwd", "eipalloc-00000000", "10.0.0.1", "0.0.0.0/0", "tcp", "-1", "nova", "/dev/vdb",
                      "bm92YQ==", "!!!", String(repeating: "a", count: 300), "launchPermission", "all", "instance-state-name", "true", "web", "data"] + ids + ids
        var requests: [(form: String, user: String)] = []
        for _ in 0..<700 {
            var form = "Version=2016-11-15"
            let action = actions.randomElement(using: &generator)!
            if !action.isEmpty { form += "&Action=\(action)" }
            for _ in 0..<Int.random(in: 0...5, using: &generator) {
                let value = values.randomElement(using: &generator)!.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
                form += "&\(names.randomElement(using: &generator)!)=\(value)"
            }
            requests.append((form, ["alice", "bob"].randomElement(using: &generator)!))
        }
        let planned = requests
        let (fives, answered) = try await Self.app(store).test(.router) { client in
            var fives: [String] = []
            var answered: [Int: Int] = [:]
            for (form, user) in planned {
                let (headers, body) = try Self.signed(store, form, as: user)
                let (code, bad) = try await client.execute(uri: "/", method: .post, headers: headers, body: body) { response -> (Int, String?) in
                    (response.status.code / 100, response.status.code >= 500 ? "\(response.status.code) \(form): \(String(buffer: response.body).prefix(300))" : nil)
                }
                answered[code, default: 0] += 1
                if let bad { fives.append(bad) }
            }
            return (fives, answered)
        }
        #expect(answered[2, default: 0] > 50 && answered[4, default: 0] > 50, "the requests reach both answers and refusals (seed \(seed): \(answered))")
        #expect(fives.isEmpty, "seed \(seed): \(fives.count) answers were 5xx, e.g. \(fives.prefix(3))")
    }

    @Test("a body over the limit is 413 RequestEntityTooLarge, with no internal type in the answer")
    func bodyTooLarge() async throws {
        let store = try Self.store()
        let form = "Action=DescribeRegions&UserData=" + String(repeating: "A", count: 2 << 20)
        try await Self.app(store).test(.router) { client in
            try await client.execute(uri: "/", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"], body: ByteBuffer(string: form)) { response in
                #expect(response.status == .contentTooLarge)
                #expect(Self.code(response) == "RequestEntityTooLarge")
                #expect(!String(buffer: response.body).contains("NIO"), "\(String(buffer: response.body))")
            }
        }
    }

    @Test("a request signed for another service or region is AuthFailure, saying which")
    func scope() async throws {
        let store = try Self.store()
        try await Self.app(store).test(.router) { client in
            for (service, region, expected) in [("s3", "nova", "signed for service &quot;s3&quot;"), ("ec2", "us-east-1", "signed for region &quot;us-east-1&quot;"), ("stratus", "nova", "signed for service &quot;stratus&quot;")] {
                let (headers, body) = try Self.signed(store, "Action=DescribeRegions&Version=2016-11-15", as: "alice", service: service, region: region)
                try await client.execute(uri: "/", method: .post, headers: headers, body: body) { response in
                    #expect(response.status == .unauthorized && Self.code(response) == "AuthFailure", "\(service)/\(region)")
                    #expect(String(buffer: response.body).contains(expected), "\(String(buffer: response.body))")
                }
            }
            let (headers, body) = try Self.signed(store, "Action=DescribeRegions&Version=2016-11-15", as: "alice")
            try await client.execute(uri: "/", method: .post, headers: headers, body: body) { response in
                #expect(response.status == .ok, "the right scope still works")
            }
        }
    }

    @Test("an endpoint configured for another region takes signatures for it alone and names it in DescribeRegions")
    func configuredRegion() async throws {
        let store = try Self.store()
        let app = EC2API(store: store, dataDirectory: NSTemporaryDirectory(), node: nil, region: "eu-test-1", endpoint: "").application(host: "127.0.0.1", port: 0, logger: .init(label: "test")) { _ in }
        try await app.test(.router) { client in
            let (nova, novaBody) = try Self.signed(store, "Action=DescribeRegions&Version=2016-11-15", as: "alice")
            try await client.execute(uri: "/", method: .post, headers: nova, body: novaBody) { response in
                #expect(response.status == .unauthorized && String(buffer: response.body).contains("signed for region &quot;nova&quot;"), "\(String(buffer: response.body))")
            }
            let (headers, body) = try Self.signed(store, "Action=DescribeRegions&Version=2016-11-15", as: "alice", region: "eu-test-1")
            try await client.execute(uri: "/", method: .post, headers: headers, body: body) { response in
                #expect(response.status == .ok && String(buffer: response.body).contains("<regionName>eu-test-1</regionName>"), "\(String(buffer: response.body))")
            }
        }
    }
}
