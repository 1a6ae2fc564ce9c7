import Foundation
import StratusIdentity

/// `stratus-bench ec2-load URL ACCESS SECRET IMAGE [--clients N] [--seconds S] [--region R]`:
/// N concurrent clients, each on its own thread with one keep-alive connection, loop
/// RunInstances → DescribeInstances (that id) → TerminateInstances → DescribeInstances (the
/// project) against a running server for S seconds, and print one JSON object with each action's
/// count, p50, p99 and max (ms), the mutating and read p99, and requests per second.
///
/// Native so that the client is not what is measured: a request costs the client one SigV4
/// signature and a blocking send and receive on loopback, about 50 µs of CPU.
enum EC2LoadBench {
    struct Options {
        var url: URL
        var accessKey: String
        var secretKey: String
        var image: String
        var clients = 100
        var seconds = 60.0
        var region = "nova"
        var instanceType = "m1.tiny"
    }

    static func run(_ arguments: [String]) throws {
        var positional: [String] = []
        var options: [String: String] = [:]
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            if argument.hasPrefix("--") {
                guard let value = iterator.next() else { throw LoadError("\(argument) needs a value") }
                options[String(argument.dropFirst(2))] = value
            } else {
                positional.append(argument)
            }
        }
        guard positional.count == 4, let url = URL(string: positional[0]), let port = url.port, url.host != nil else {
            throw LoadError("usage: stratus-bench ec2-load EC2_URL ACCESS_KEY SECRET_KEY IMAGE_ID [--clients 100] [--seconds 60] [--region nova] [--instance-type m1.tiny]")
        }
        _ = port
        var load = Options(url: url, accessKey: positional[1], secretKey: positional[2], image: positional[3])
        if let value = options["clients"] { load.clients = Int(value) ?? load.clients }
        if let value = options["seconds"] { load.seconds = Double(value) ?? load.seconds }
        if let value = options["region"] { load.region = value }
        if let value = options["instance-type"] { load.instanceType = value }
        let report = try measure(load)
        FileHandle.standardOutput.write(try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys]) + Data("\n".utf8))
    }

    struct LoadError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// What one client measured: milliseconds per action, and failures by action and status.
    final class Tally: @unchecked Sendable {
        var times: [String: [Double]] = [:]
        var failures: [String: Int] = [:]
        var firstFailure: String?
    }

    static func measure(_ options: Options) throws -> [String: Any] {
        let tallies = (0..<options.clients).map { _ in Tally() }
        let start = Date()
        let deadline = start.addingTimeInterval(options.seconds)
        let group = DispatchGroup()
        for tally in tallies {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                churn(options, until: deadline, into: tally)
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        group.wait()
        let elapsed = Date().timeIntervalSince(start)
        var byAction: [String: [Double]] = [:]
        var failures: [String: Int] = [:]
        for tally in tallies {
            byAction.merge(tally.times) { $0 + $1 }
            failures.merge(tally.failures) { $0 + $1 }
        }
        func summary(_ values: [Double]) -> [String: Any] {
            let sorted = values.sorted()
            guard !sorted.isEmpty else { return ["count": 0] }
            func rank(_ q: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))] }
            return ["count": sorted.count, "p50_ms": rank(0.5), "p99_ms": rank(0.99), "max_ms": sorted.last!]
        }
        let mutating = ["RunInstances", "TerminateInstances"].flatMap { byAction[$0] ?? [] }
        let reads = byAction.filter { $0.key.hasPrefix("Describe") }.flatMap(\.value)
        let total = byAction.values.reduce(0) { $0 + $1.count }
        return [
            "clients": options.clients, "seconds": elapsed,
            "requests": total, "requests_per_second": Double(total) / elapsed,
            "actions": byAction.mapValues(summary),
            "mutating": summary(mutating), "reads": summary(reads),
            "failures": failures, "first_failure": tallies.compactMap(\.firstFailure).first ?? "",
        ]
    }

    /// With STRATUS_LOAD_TRACE set, each request slower than 300 ms is printed to stderr (start, action, ms).
    static let trace = ProcessInfo.processInfo.environment["STRATUS_LOAD_TRACE"] != nil

    /// One client's loop until `deadline`.
    static func churn(_ options: Options, until deadline: Date, into tally: Tally) {
        let client = Client(options: options)
        func call(_ label: String, _ parameters: [(String, String)]) -> [UInt8]? {
            let begin = DispatchTime.now().uptimeNanoseconds
            let result = client.call(parameters)
            let milliseconds = Double(DispatchTime.now().uptimeNanoseconds - begin) / 1e6
            if trace, milliseconds > 300 { FileHandle.standardError.write(Data(String(format: "slow %.3f %@ %.0f %d\n", Double(begin) / 1e9, label, milliseconds, client.local).utf8)) }
            switch result {
            case .success(let (status, body)) where status == 200:
                tally.times[label, default: []].append(milliseconds)
                return body
            case .success(let (status, body)):
                tally.failures["\(label) \(status)", default: 0] += 1
                if tally.firstFailure == nil { tally.firstFailure = "\(label) \(status): \(String(decoding: body.prefix(300), as: UTF8.self))" }
            case .failure(let error):
                tally.failures["\(label) \(error)", default: 0] += 1
                if tally.firstFailure == nil { tally.firstFailure = "\(label): \(error)" }
            }
            return nil
        }
        while Date() < deadline {
            guard let launched = call("RunInstances", [("Action", "RunInstances"), ("ImageId", options.image), ("MinCount", "1"), ("MaxCount", "1"), ("InstanceType", options.instanceType)]),
                let id = firstValue(of: "instanceId", in: launched)
            else {
                Thread.sleep(forTimeInterval: 0.05)
                continue
            }
            _ = call("DescribeInstances(id)", [("Action", "DescribeInstances"), ("InstanceId.1", id)])
            _ = call("TerminateInstances", [("Action", "TerminateInstances"), ("InstanceId.1", id)])
            _ = call("DescribeInstances(project)", [("Action", "DescribeInstances")])
        }
    }

    /// The text of the first `<name>…</name>` in an XML body.
    static func firstValue(of name: String, in body: [UInt8]) -> String? {
        let open = Array("<\(name)>".utf8)
        guard let start = body.firstRange(of: open)?.upperBound, let end = body[start...].firstIndex(of: UInt8(ascii: "<")) else { return nil }
        return String(decoding: body[start..<end], as: UTF8.self)
    }

    /// A keep-alive HTTP/1.1 connection on a blocking socket that sends signed EC2 form posts.
    final class Client {
        let options: Options
        let signer: RequestSigner
        var socket: Int32 = -1
        var buffer: [UInt8] = []
        /// The local port of the connection (traces tell connections apart by it).
        var local = 0

        init(options: Options) {
            self.options = options
            signer = RequestSigner(accessKey: options.accessKey, secretKey: options.secretKey, region: options.region, service: "ec2")
        }

        deinit { if socket >= 0 { close(socket) } }

        enum Failure: Error, CustomStringConvertible {
            case connect(Int32), io(String)
            var description: String {
                switch self {
                case .connect(let code): "connect errno \(code)"
                case .io(let what): what
                }
            }
        }

        func call(_ parameters: [(String, String)]) -> Result<(Int, [UInt8]), Failure> {
            let body = (parameters + [("Version", "2016-11-15")]).map { "\($0.0)=\(AWSEncoding.encode($0.1))" }.joined(separator: "&")
            let data = Data(body.utf8)
            let contentType = "application/x-www-form-urlencoded; charset=utf-8"
            let signed = signer.headers(method: "POST", url: options.url, headers: [("content-type", contentType)], body: data)
            var head = "POST \(options.url.path.isEmpty ? "/" : options.url.path) HTTP/1.1\r\nHost: \(options.url.host!):\(options.url.port!)\r\nContent-Type: \(contentType)\r\nContent-Length: \(data.count)\r\n"
            for (name, value) in signed { head += "\(name): \(value)\r\n" }
            head += "\r\n"
            let request = Array(head.utf8) + Array(data)
            do {
                // A request on a connection the server closed (idle timeout) is retried once on a new one.
                for attempt in 0..<2 {
                    if socket < 0 { try connect() }
                    if send(request), let response = try? receive() { return .success(response) }
                    close(socket)
                    socket = -1
                    buffer = []
                    if attempt == 1 { return .failure(.io("connection lost")) }
                }
            } catch let failure as Failure {
                return .failure(failure)
            } catch {
                return .failure(.io("\(error)"))
            }
            return .failure(.io("unreachable"))
        }

        func connect() throws {
            let fd = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw Failure.connect(errno) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(options.url.port!).bigEndian)
            address.sin_addr.s_addr = inet_addr(options.url.host == "localhost" ? "127.0.0.1" : options.url.host!)
            let result = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Foundation.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard result == 0 else {
                let code = errno
                close(fd)
                throw Failure.connect(code)
            }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            socket = fd
            var bound = sockaddr_in()
            var size = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &size) } }
            local = Int(UInt16(bigEndian: bound.sin_port))
        }

        func send(_ bytes: [UInt8]) -> Bool {
            var sent = 0
            while sent < bytes.count {
                let count = bytes[sent...].withUnsafeBytes { Foundation.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard count > 0 else { return false }
                sent += count
            }
            return true
        }

        /// Reads more bytes into `buffer`; false at end of file or error.
        func fill() -> Bool {
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return false }
            buffer += chunk[0..<count]
            return true
        }

        /// One response: status and body (Content-Length or chunked).
        func receive() throws -> (Int, [UInt8]) {
            let separator = Array("\r\n\r\n".utf8)
            var headEnd: Range<Int>?
            while true {
                headEnd = buffer.firstRange(of: separator)
                if headEnd != nil { break }
                guard fill() else { throw Failure.io("closed before a response head") }
            }
            let head = String(decoding: buffer[..<headEnd!.lowerBound], as: UTF8.self)
            buffer.removeFirst(headEnd!.upperBound)
            let lines = head.split(separator: "\r\n")
            guard let statusLine = lines.first, let status = statusLine.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { throw Failure.io("bad status line") }
            var length: Int?
            var chunked = false
            var closeAfter = false
            for line in lines.dropFirst() {
                let parts = line.split(separator: ":", maxSplits: 1)
                guard parts.count == 2 else { continue }
                let name = parts[0].lowercased()
                let value = parts[1].trimmingCharacters(in: .whitespaces).lowercased()
                if name == "content-length" { length = Int(value) }
                if name == "transfer-encoding", value.contains("chunked") { chunked = true }
                if name == "connection", value == "close" { closeAfter = true }
            }
            var body: [UInt8] = []
            if chunked {
                while true {
                    var lineEnd: Range<Int>?
                    while true {
                        lineEnd = buffer.firstRange(of: Array("\r\n".utf8))
                        if lineEnd != nil { break }
                        guard fill() else { throw Failure.io("closed inside a chunk size") }
                    }
                    let sizeText = String(decoding: buffer[..<lineEnd!.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
                    guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else { throw Failure.io("bad chunk size") }
                    buffer.removeFirst(lineEnd!.upperBound)
                    while buffer.count < size + 2 { guard fill() else { throw Failure.io("closed inside a chunk") } }
                    body += buffer[..<size]
                    buffer.removeFirst(size + 2)
                    if size == 0 { break }
                }
            } else {
                let needed = length ?? 0
                while buffer.count < needed { guard fill() else { throw Failure.io("closed inside a body") } }
                body = Array(buffer[..<needed])
                buffer.removeFirst(needed)
            }
            if closeAfter {
                close(socket)
                socket = -1
                buffer = []
            }
            return (status, body)
        }
    }
}
