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
    static func send(_ store: Store, _ forms: [String], as user: String = "alice", project: String = "acme") async throws -> [Answer] {
        try await EC2RouterTests.app(store).test(.router) { client in
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
}
