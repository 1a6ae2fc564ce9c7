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
@Suite(.serialized) struct ConnectionLimitTests {
    /// A TCP connection from `source` (any address of 127/8 is this host) to 127.0.0.1:`port`
    /// that has sent `bytes` and nothing more.
    static func halfOpen(port: Int, from source: String = "127.0.0.1", sending bytes: String) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr.s_addr = inet_addr(source)
        let bound = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0 else { close(fd); throw POSIXError(.EADDRNOTAVAIL) }
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

    /// Whether `condition` holds within `seconds`, checked every 100 ms.
    static func eventually(seconds: Int = 30, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    static let slowHead = "POST /v1/plan HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "

    @Test("500 connections holding half-sent headers are closed after the idle timeout, while a fresh request is answered")
    func slowHeaders() async throws {
        let directory = NSTemporaryDirectory() + "stratus-slow-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = try ServerConfiguration.resolve(
            arguments: ["--data-dir", directory, "--api-port", "0", "--ec2-port", "0", "--s3-port", "0", "--node-name", "n1", "--hypervisor", try privateNodeURI(), "--http-idle-timeout", "5"], environment: [:]
        )
        let server = try await StratusServer.build(configuration, logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            let services = ServiceGroup(configuration: .init(services: server.services.map { .init(service: $0) }, logger: Logger(label: "test")))
            group.addTask { try await services.run() }
            let info = await server.endpoints.listening()
            let apiPort = try #require(info.apiPort)
            // In process, 500 from ten addresses (SlowClientTests holds 5,000 against a real serve,
            // from another process: thousands of descriptors here made Foundation's Process.run
            // crash in other tests).
            // Sockets block: opened on a Dispatch thread, not on the cooperative pool (see offPool).
            let first = try await offPool { try Self.halfOpen(port: apiPort, from: "127.0.0.2", sending: Self.slowHead) }
            // 5 s, not less: beside the whole suite on two cores, the look at the first one was seen to come after 2 s.
            #expect(try await offPool { !Self.closedByServer(first, wait: true) }, "before the timeout the slow connection is open")
            let slow = try await offPool { try [first] + (1..<500).map { index in try Self.halfOpen(port: apiPort, from: "127.0.0.\(2 + index % 10)", sending: Self.slowHead) } }
            defer { for fd in slow { close(fd) } }
            let (body, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(apiPort)/healthz")!)
            #expect((response as? HTTPURLResponse)?.statusCode == 200 && String(decoding: body, as: UTF8.self) == "ok\n", "a fresh request is answered")
            var open = slow
            let deadline = ContinuousClock.now + .seconds(60)
            while !open.isEmpty, ContinuousClock.now < deadline {
                open.removeAll { Self.closedByServer($0) }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(open.isEmpty, "\(slow.count - open.count) of \(slow.count) half-open connections were closed after the 5 s idle timeout")
            await services.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    }

    @Test("one client address holds at most --max-connections-per-client; another address is still served")
    func perClientCap() async throws {
        let directory = NSTemporaryDirectory() + "stratus-cap-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = try ServerConfiguration.resolve(
            arguments: ["--data-dir", directory, "--api-port", "0", "--ec2-port", "0", "--s3-port", "0", "--node-name", "n1", "--hypervisor", try privateNodeURI(), "--max-connections-per-client", "20"], environment: [:]
        )
        let server = try await StratusServer.build(configuration, logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            let services = ServiceGroup(configuration: .init(services: server.services.map { .init(service: $0) }, logger: Logger(label: "test")))
            group.addTask { try await services.run() }
            let apiPort = try #require(await server.endpoints.listening().apiPort)
            // 21 from one address. The two event loops admit them in no fixed order, so which one is
            // refused is not known, only that one is.
            let opened = try await offPool { try (0..<21).map { _ in try Self.halfOpen(port: apiPort, from: "127.0.0.3", sending: Self.slowHead) } }
            defer { for fd in opened { close(fd) } }
            var closed: Set<Int32> = []
            let refused = try await Self.eventually(seconds: 8) {
                closed.formUnion(opened.filter { Self.closedByServer($0) })
                return !closed.isEmpty
            }
            #expect(refused, "one connection beyond the cap is closed at once, not at the 10 s idle timeout")
            try await Task.sleep(for: .milliseconds(300))
            closed.formUnion(opened.filter { Self.closedByServer($0) })
            #expect(closed.count == 1, "exactly one of 21 is refused; the 20 within the cap stay open (closed: \(closed.count))")
            var held = opened.filter { !closed.contains($0) }
            let (body, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(apiPort)/healthz")!)
            #expect((response as? HTTPURLResponse)?.statusCode == 200 && String(decoding: body, as: UTF8.self) == "ok\n", "another address is served")
            // A slot freed by the client is its own again.
            shutdown(held.removeLast(), Int32(SHUT_RDWR))  // closed for the server; the fd itself at the end
            // The server sees the close a moment later; until then a new connection is still the 21st.
            let served = try await Self.eventually { try await offPool {
                let again = try Self.halfOpen(port: apiPort, from: "127.0.0.3", sending: "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                defer { close(again) }
                var reply = [UInt8](repeating: 0, count: 64)
                var timeout = timeval(tv_sec: 2, tv_usec: 0)
                setsockopt(again, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                let count = recv(again, &reply, reply.count, 0)
                return count > 0 && String(decoding: reply.prefix(max(0, count)), as: UTF8.self).hasPrefix("HTTP/1.1 200")
            } }
            #expect(served, "after one of its connections closed, the client may open another")
            await services.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    }
}
