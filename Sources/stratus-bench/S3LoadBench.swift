import Foundation
import StratusIdentity

/// `stratus-bench s3-load URL ACCESS SECRET [--bucket B] [--clients 16] [--objects 10000]
/// [--size 4096] [--large-mb 1024] [--region nova]`: against any S3 endpoint, in order: PUT then
/// GET of N small objects by C concurrent clients (ops/s), LIST of the N keys (ListObjectsV2
/// pages of 1,000; seconds), PUT then GET of one large object streamed from memory (MB/s).
/// Prints one JSON object. Each client is a thread with one keep-alive connection on a blocking
/// socket, signing SigV4 itself (small bodies with their SHA-256, the large one UNSIGNED-PAYLOAD),
/// so the client is not what is measured.
enum S3LoadBench {
    struct Options {
        var url: URL
        var accessKey: String
        var secretKey: String
        var bucket = "bench"
        var clients = 16
        var objects = 10_000
        var size = 4096
        var largeMB = 1024
        var region = "nova"
    }

    static func run(_ arguments: [String]) throws {
        var positional: [String] = []
        var options: [String: String] = [:]
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            if argument.hasPrefix("--") {
                guard let value = iterator.next() else { throw EC2LoadBench.LoadError("\(argument) needs a value") }
                options[String(argument.dropFirst(2))] = value
            } else {
                positional.append(argument)
            }
        }
        guard positional.count == 3, let url = URL(string: positional[0]), url.port != nil, url.host != nil else {
            throw EC2LoadBench.LoadError("usage: stratus-bench s3-load S3_URL ACCESS_KEY SECRET_KEY [--bucket bench] [--clients 16] [--objects 10000] [--size 4096] [--large-mb 1024] [--region nova]")
        }
        var load = Options(url: url, accessKey: positional[1], secretKey: positional[2])
        if let value = options["bucket"] { load.bucket = value }
        if let value = options["clients"].flatMap(Int.init) { load.clients = value }
        if let value = options["objects"].flatMap(Int.init) { load.objects = value }
        if let value = options["size"].flatMap(Int.init) { load.size = value }
        if let value = options["large-mb"].flatMap(Int.init) { load.largeMB = value }
        if let value = options["region"] { load.region = value }
        let report = try measure(load)
        FileHandle.standardOutput.write(try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys]) + Data("\n".utf8))
    }

    /// A keep-alive connection that sends signed S3 requests with any method and body.
    final class Client {
        let options: Options
        let signer: RequestSigner
        let connection: EC2LoadBench.Client

        init(_ options: Options) {
            self.options = options
            signer = RequestSigner(accessKey: options.accessKey, secretKey: options.secretKey, region: options.region, service: "s3")
            connection = EC2LoadBench.Client(options: EC2LoadBench.Options(url: options.url, accessKey: "", secretKey: "", image: ""))
        }

        /// One request; `body` is sent as it is, or `streamed` bytes of a repeating buffer with UNSIGNED-PAYLOAD.
        func request(_ method: String, _ path: String, query: String = "", body: [UInt8] = [], streamed: Int = 0, discard: Bool = false) throws -> (Int, [UInt8], Int) {
            let target = URL(string: options.url.absoluteString.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + path + (query.isEmpty ? "" : "?" + query))!
            let signed = signer.headers(method: method, url: target, body: Data(body), unsignedPayload: streamed > 0)
            var head = "\(method) \(path)\(query.isEmpty ? "" : "?" + query) HTTP/1.1\r\nHost: \(options.url.host!):\(options.url.port!)\r\nContent-Length: \(streamed > 0 ? streamed : body.count)\r\n"
            for (name, value) in signed { head += "\(name): \(value)\r\n" }
            head += "\r\n"
            for attempt in 0..<2 {
                if connection.socket < 0 { try connection.connect() }
                var ok = connection.send(Array(head.utf8))
                if ok, !body.isEmpty { ok = connection.send(body) }
                if ok, streamed > 0 {
                    let block = [UInt8](repeating: 0x5a, count: 1 << 20)
                    var left = streamed
                    while ok, left > 0 {
                        let count = min(left, block.count)
                        ok = connection.send(count == block.count ? block : Array(block[..<count]))
                        left -= count
                    }
                }
                if ok {
                    if discard, let result = try? receiveDiscarding() { return result }
                    if !discard, let response = try? connection.receive() { return (response.0, response.1, response.1.count) }
                }
                close(connection.socket)
                connection.socket = -1
                connection.buffer = []
                if attempt == 1 { throw EC2LoadBench.LoadError("\(method) \(path): connection lost") }
            }
            throw EC2LoadBench.LoadError("unreachable")
        }

        /// A response whose body (Content-Length) is counted, not kept: a gigabyte GET.
        func receiveDiscarding() throws -> (Int, [UInt8], Int) {
            let separator = Array("\r\n\r\n".utf8)
            while connection.buffer.firstRange(of: separator) == nil {
                guard connection.fill() else { throw EC2LoadBench.LoadError("closed before a response head") }
            }
            let end = connection.buffer.firstRange(of: separator)!
            let head = String(decoding: connection.buffer[..<end.lowerBound], as: UTF8.self)
            connection.buffer.removeFirst(end.upperBound)
            let status = head.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
            let length = head.split(separator: "\r\n").compactMap { line -> Int? in
                let parts = line.split(separator: ":", maxSplits: 1)
                return parts.count == 2 && parts[0].lowercased() == "content-length" ? Int(parts[1].trimmingCharacters(in: .whitespaces)) : nil
            }.first ?? 0
            var received = min(connection.buffer.count, length)
            connection.buffer.removeFirst(received)
            var chunk = [UInt8](repeating: 0, count: 1 << 20)
            while received < length {
                let count = chunk.withUnsafeMutableBytes { recv(connection.socket, $0.baseAddress, min($0.count, length - received), 0) }
                guard count > 0 else { throw EC2LoadBench.LoadError("closed inside a body") }
                received += count
            }
            return (status, [], received)
        }
    }

    /// Runs `work(client, index)` for indices 0..<count spread over the clients; returns seconds and failures.
    static func parallel(_ options: Options, count: Int, _ work: @escaping @Sendable (Client, Int) throws -> Bool) -> (seconds: Double, failures: Int, first: String?) {
        final class Outcome: @unchecked Sendable {
            var failures = 0
            var first: String?
        }
        let outcomes = (0..<options.clients).map { _ in Outcome() }
        let group = DispatchGroup()
        let start = DispatchTime.now().uptimeNanoseconds
        for (slot, outcome) in outcomes.enumerated() {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                let client = Client(options)
                var index = slot
                while index < count {
                    do {
                        if try !work(client, index) { outcome.failures += 1 }
                    } catch {
                        outcome.failures += 1
                        if outcome.first == nil { outcome.first = "\(error)" }
                    }
                    index += options.clients
                }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        group.wait()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return (seconds, outcomes.reduce(0) { $0 + $1.failures }, outcomes.compactMap(\.first).first)
    }

    static func measure(_ options: Options) throws -> [String: Any] {
        let setup = Client(options)
        let (made, madeBody, _) = try setup.request("PUT", "/\(options.bucket)")
        guard made == 200 || made == 409 else { throw EC2LoadBench.LoadError("CreateBucket answered \(made): \(String(decoding: madeBody.prefix(300), as: UTF8.self))") }
        let payload = (0..<options.size).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let bucket = options.bucket
        let key: @Sendable (Int) -> String = { index in "/\(bucket)/small/\(String(format: "%06d", index))" }
        let put = parallel(options, count: options.objects) { client, index in
            try client.request("PUT", key(index), body: payload).0 == 200
        }
        let get = parallel(options, count: options.objects) { client, index in
            let (status, body, _) = try client.request("GET", key(index))
            return status == 200 && body.count == options.size
        }
        // LIST: every key, in pages of 1,000, following the continuation token.
        let listStart = DispatchTime.now().uptimeNanoseconds
        var listed = 0
        var token: String?
        var pages = 0
        repeat {
            var query = "list-type=2&max-keys=1000&prefix=small%2F"
            if let token { query = "continuation-token=\(AWSEncoding.encode(token))&" + query }
            let (status, body, _) = try setup.request("GET", "/\(options.bucket)", query: query)
            guard status == 200 else { throw EC2LoadBench.LoadError("ListObjectsV2 answered \(status): \(String(decoding: body.prefix(300), as: UTF8.self))") }
            let text = String(decoding: body, as: UTF8.self)
            listed += text.components(separatedBy: "<Key>").count - 1
            token = text.range(of: "<NextContinuationToken>").flatMap { start in
                text.range(of: "</NextContinuationToken>").map { String(text[start.upperBound..<$0.lowerBound]) }
            }
            pages += 1
        } while token != nil && pages < 1000
        let listSeconds = Double(DispatchTime.now().uptimeNanoseconds - listStart) / 1e9

        let bytes = options.largeMB << 20
        let largeKey = "/\(options.bucket)/large.bin"
        let putLargeStart = DispatchTime.now().uptimeNanoseconds
        let (putLargeStatus, putLargeBody, _) = try setup.request("PUT", largeKey, streamed: bytes)
        let putLarge = Double(DispatchTime.now().uptimeNanoseconds - putLargeStart) / 1e9
        guard putLargeStatus == 200 else { throw EC2LoadBench.LoadError("PUT of the large object answered \(putLargeStatus): \(String(decoding: putLargeBody.prefix(300), as: UTF8.self))") }
        let getLargeStart = DispatchTime.now().uptimeNanoseconds
        let (getLargeStatus, _, gotBytes) = try setup.request("GET", largeKey, discard: true)
        let getLarge = Double(DispatchTime.now().uptimeNanoseconds - getLargeStart) / 1e9
        guard getLargeStatus == 200, gotBytes == bytes else { throw EC2LoadBench.LoadError("GET of the large object answered \(getLargeStatus) with \(gotBytes) of \(bytes) bytes") }

        let megabytes = Double(bytes) / 1_048_576
        return [
            "clients": options.clients, "objects": options.objects, "size": options.size, "large_mb": options.largeMB,
            "put_small_ops": Double(options.objects) / put.seconds, "put_small_failures": put.failures,
            "get_small_ops": Double(options.objects) / get.seconds, "get_small_failures": get.failures,
            "list_seconds": listSeconds, "listed": listed, "list_pages": pages,
            "put_large_mbps": megabytes / putLarge, "get_large_mbps": megabytes / getLarge,
            "first_failure": put.first ?? get.first ?? "",
        ]
    }
}
