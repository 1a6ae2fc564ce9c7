import Foundation
import StratusTestSupport
import Testing

/// Issue 19, defect 3: unsigned bodies are refused from their headers, so ten clients each
/// sending 200 MB leave the server's memory where it was.
@Suite struct BodyLimitTests {
    /// The resident set of `pid` in MB: now (`VmRSS`) and its peak so far (`VmHWM`).
    static func memory(_ pid: Int32) throws -> (rss: Int, peak: Int) {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        func field(_ name: String) -> Int {
            let line = status.split(separator: "\n").first { $0.hasPrefix(name + ":") } ?? ""
            return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
        }
        return (field("VmRSS"), field("VmHWM"))
    }

    /// Sends a POST announcing and then streaming `megabytes` MB of body to 127.0.0.1:`port`,
    /// as fast as the server takes it, and returns the status line of the answer.
    static func flood(port: Int, path: String, megabytes: Int) -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard connected == 0 else { return "connect failed" }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let head = "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Type: application/yaml\r\nContent-Length: \(megabytes << 20)\r\n\r\n"
        _ = head.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1 << 20)
        // The server answers and closes without reading: sending then fails, which is the point.
        for _ in 0..<megabytes {
            let sent = chunk.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { break }
        }
        var reply = [UInt8](repeating: 0, count: 256)
        let count = recv(fd, &reply, reply.count, 0)
        return count > 0 ? String(decoding: reply.prefix(count), as: UTF8.self).components(separatedBy: "\r\n")[0] : "no answer (errno \(errno))"
    }

    @Test("ten unsigned 200 MB bodies to /v1/plan are each refused with 401 while the server's memory stays bounded")
    func unsignedFlood() async throws {
        let cli = try CLI()
        let server = try Server(cli: cli, arguments: ["--api-port", "0"])
        defer { server.kill(SIGINT) }
        let url = try await server.url(cli: cli)
        let port = try #require(URL(string: url)?.port)
        let pid = server.process.processIdentifier
        let before = try Self.memory(pid)
        let answers = try await withThrowingTaskGroup(of: String.self) { group in
            // Each flood blocks on its socket: on a Dispatch thread, not on the cooperative pool.
            for _ in 0..<10 { group.addTask { try await offPool { Self.flood(port: port, path: "/v1/plan", megabytes: 200) } } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let after = try Self.memory(pid)
        for answer in answers { #expect(answer.hasPrefix("HTTP/1.1 401"), "an unsigned body is refused from its headers: \(answer)") }
        // 2,000 MB were offered; reading even one would show. 64 MB leaves room for the server's own work.
        #expect(after.peak - before.rss < 64, "peak resident memory grew by \(after.peak - before.rss) MB (from \(before.rss) MB)")
        print("unsigned flood: 10 × 200 MB refused; server RSS \(before.rss) MB before, peak \(after.peak) MB")
    }
}
