import Foundation
import Logging
import ServiceLifecycle
import StratusAccess
import StratusTestSupport
import Testing

@testable import StratusServer

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Slow clients against a live server on loopback: half-sent headers do not hold connections.
@Suite struct ConnectionLimitTests {
    /// A TCP connection to 127.0.0.1:`port` that has sent `bytes` and nothing more.
    static func halfOpen(port: Int, sending bytes: String) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard connected == 0 else { close(fd); throw POSIXError(.ECONNREFUSED) }
        _ = bytes.withCString { send(fd, $0, strlen($0), 0) }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Whether the server closed the connection (a read gives end of file or a reset).
    /// Without `wait`, it does not block (a connection with nothing to read is open).
    static func closedByServer(_ fd: Int32, wait: Bool = false) -> Bool {
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, wait ? 0 : Int32(MSG_DONTWAIT))
        return count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
    }

    @Test("connections holding half-sent headers are closed after the idle timeout, while a fresh request is answered")
    func slowHeaders() async throws {
        let directory = NSTemporaryDirectory() + "stratus-slow-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = try ServerConfiguration.resolve(
            arguments: ["--data-dir", directory, "--api-port", "0", "--ec2-port", "0", "--node-name", "n1", "--hypervisor", try privateNodeURI(), "--http-idle-timeout", "2"], environment: [:]
        )
        let server = try await StratusServer.build(configuration, logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            let services = ServiceGroup(configuration: .init(services: server.services.map { .init(service: $0) }, logger: Logger(label: "test")))
            group.addTask { try await services.run() }
            let info = await server.endpoints.listening()
            let apiPort = try #require(info.apiPort)
            let first = try Self.halfOpen(port: apiPort, sending: "POST /v1/plan HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            #expect(!Self.closedByServer(first, wait: true), "before the timeout the slow connection is open")
            let slow = try [first] + (1..<5000).map { _ in try Self.halfOpen(port: apiPort, sending: "POST /v1/plan HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ") }
            defer { for fd in slow { close(fd) } }
            let (body, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(apiPort)/healthz")!)
            #expect((response as? HTTPURLResponse)?.statusCode == 200 && String(decoding: body, as: UTF8.self) == "ok\n", "a fresh request is answered")
            var open = slow
            let deadline = ContinuousClock.now + .seconds(20)
            while !open.isEmpty, ContinuousClock.now < deadline {
                open.removeAll { Self.closedByServer($0) }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(open.isEmpty, "\(slow.count - open.count) of \(slow.count) half-open connections were closed after the 2 s idle timeout")
            await services.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    }
}
