import Foundation
import Logging
import ServiceLifecycle
import StratusAccess
import StratusIdentity
import StratusStore
import StratusTestSupport
import Testing

@testable import StratusServer

/// Issue 19, defect 6: a body that is not valid HTTP is the client's error (400), on both APIs.
@Suite struct MalformedBodyTests {
    /// Sends `head` and `body` raw to 127.0.0.1:`port`; the status line and the rest of the answer.
    static func exchange(port: Int, _ text: String) throws -> (status: String, answer: String) {
        let fd = try ConnectionLimitTests.halfOpen(port: port, sending: text)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var reply = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &reply, reply.count, 0)
        let answer = count > 0 ? String(decoding: reply.prefix(count), as: UTF8.self) : ""
        return (answer.components(separatedBy: "\r\n")[0], answer)
    }

    @Test("a malformed chunk size is 400 with the API's own error, never 500 or an internal name")
    func malformedChunk() async throws {
        let directory = NSTemporaryDirectory() + "stratus-chunk-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = try ServerConfiguration.resolve(
            arguments: ["--data-dir", directory, "--api-port", "0", "--ec2-port", "0", "--s3-port", "0", "--node-name", "n1", "--hypervisor", try privateNodeURI()], environment: [:]
        )
        let server = try await StratusServer.build(configuration, logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            let services = ServiceGroup(configuration: .init(services: server.services.map { .init(service: $0) }, logger: Logger(label: "test")))
            group.addTask { try await services.run() }
            let info = await server.endpoints.listening()
            let (apiPort, ec2Port) = (try #require(info.apiPort), try #require(info.ec2Port))
            let chunked = "Transfer-Encoding: chunked\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            let malformed = "zz\r\nAction=DescribeRegions\r\n0\r\n\r\n"

            let ec2 = try await offPool { try Self.exchange(port: ec2Port, "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n\(chunked)\r\n\(malformed)") }
            #expect(ec2.status == "HTTP/1.1 400 Bad Request" && ec2.answer.contains("<Code>InvalidRequest</Code>"), "\(ec2.answer)")

            // The resource API reads a body only for a known key: sign as the administrator.
            let admin = try Store(dataDirectory: directory).credential(user: Store.rootUser)
            let signed = RequestSigner(accessKey: admin.accessKey, secretKey: admin.secretKey)
                .headers(method: "POST", url: URL(string: "http://127.0.0.1:\(apiPort)/v1/plan")!, body: Data("x".utf8))
                .map { "\($0.name): \($0.value)\r\n" }.joined()
            let api = try await offPool { try Self.exchange(port: apiPort, "POST /v1/plan HTTP/1.1\r\nHost: 127.0.0.1:\(apiPort)\r\n\(signed)\(chunked)\r\n\(malformed)") }
            #expect(api.status == "HTTP/1.1 400 Bad Request" && api.answer.contains("could not be read"), "\(api.answer)")
            for answer in [ec2.answer, api.answer] { #expect(!answer.contains("HTTPParserError") && !answer.contains("NIO"), "\(answer)") }
            await services.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    }
}
