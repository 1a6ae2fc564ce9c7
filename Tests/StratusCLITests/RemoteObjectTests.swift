import Foundation
import StratusIdentity
import StratusStore
import Testing

@testable import StratusControl
@testable import StratusNode

/// The objects a node on another host fetches (issue 13/16): presigned GETs of a live S3 API,
/// fetched with curl into the node's cache, checked, and never shown with their signature.
@Suite struct RemoteObjectTests {
    @Test("a presigned GET from the locator fetches the object into the cache; a wrong checksum, a forged signature and an expired URL cache nothing and say why without the signature")
    func presignedFetch() async throws {
        let cli = try CLI()
        let examples = try cli.copyExamples()
        let server = try Server(cli: cli, arguments: ["--api-port", "0", "--apply", "\(examples)/identity.yaml"])
        defer { server.kill(SIGINT) }
        _ = try await server.url(cli: cli)
        var environment = IdentityCLITests.exports(try await cli.run("credentials", "alice", "-p", "acme").stdout)
        environment["AWS_EC2_METADATA_DISABLED"] = "true"
        let s3 = try #require(environment["S3_URL"])
        let payload = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try Data(payload).write(to: URL(fileURLWithPath: "\(cli.workDirectory)/blob"))
        for arguments in [["mb", "s3://images"], ["cp", "\(cli.workDirectory)/blob", "s3://images/dir/a blob.raw"]] {
            let result = try await EC2ClientTests.run(["aws", "--endpoint-url", s3, "--region", "nova", "s3"] + arguments, environment: environment)
            #expect(result.status == 0, "\(result.output)")
        }

        let store = try Store(dataDirectory: cli.dataDirectory)
        let admin = try store.credential(user: Store.rootUser)
        let signer = RequestSigner(accessKey: admin.accessKey, secretKey: admin.secretKey, region: "nova", service: "s3")
        let remote = RemoteObjects(signer: { signer })
        let locator = ObjectLocator(store: store, dataDirectory: cli.dataDirectory, remote: remote)
        guard case .missing(let why) = try locator.locate("s3://images/dir/a blob.raw") else { Issue.record("located before the endpoint was known"); return }
        #expect(why.contains("not listening yet"))
        remote.listening(at: try #require(URL(string: s3)))
        guard case .object(let object) = try locator.locate("s3://images/dir/a blob.raw") else { Issue.record("not located"); return }
        #expect(object.path.hasPrefix(s3 + "/images/dir/a%20blob.raw?") && object.path.contains("X-Amz-Signature="), "\(ImageCache.redacted(object.path))")

        let cache = ImageCache(dataDirectory: "\(cli.workDirectory)/node")
        let cached = try cache.local("s3://images/dir/a blob.raw", objects: ["s3://images/dir/a blob.raw": object])
        #expect(FileManager.default.contents(atPath: cached) == Data(payload), "the cached file is the object")
        #expect(cached.hasSuffix("/images/" + object.md5))

        func refused(_ bad: ImageObject, _ what: String, expecting: String) {
            let other = ImageCache(dataDirectory: "\(cli.workDirectory)/node-\(UUID().uuidString.prefix(6))")
            do {
                _ = try other.local("s3://x", objects: ["s3://x": bad])
                Issue.record("\(what) was cached")
            } catch {
                #expect(error.message.contains(expecting) && !error.message.contains("X-Amz-Signature") && !error.message.contains(admin.accessKey), "\(what): \(error.message)")
            }
            let left = (try? FileManager.default.contentsOfDirectory(atPath: other.directory)) ?? []
            #expect(left.isEmpty, "\(what) left \(left)")
        }
        refused(ImageObject(path: object.path, size: object.size, md5: String(repeating: "0", count: 32)), "a wrong checksum", expecting: "it was not cached")
        let forged = object.path.replacingOccurrences(of: #"X-Amz-Signature=[0-9a-f]{4}"#, with: "X-Amz-Signature=0000", options: .regularExpression)
        refused(ImageObject(path: forged, size: object.size, md5: object.md5), "a forged signature", expecting: "403")
        let expired = try #require(try remote.url(bucket: "images", key: "dir/a blob.raw", now: Date().addingTimeInterval(-7200)))
        refused(ImageObject(path: expired, size: object.size, md5: object.md5), "an expired URL", expecting: "403")
    }
}
