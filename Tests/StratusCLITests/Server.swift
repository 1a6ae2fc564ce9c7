import Foundation

/// Runs `stratus serve` in the background; the test stops it by its PID.
final class Server {
    let process = Process()
    let log: String

    /// - Parameter dataDirectory: how serve is told the data directory (make run names it
    ///   relative to where it runs, which is `cli.workDirectory`); `cli.dataDirectory` by default.
    init(cli: CLI, arguments: [String], dataDirectory: String? = nil) throws {
        log = "\(cli.workDirectory)/serve-\(UUID().uuidString.prefix(6)).log"
        FileManager.default.createFile(atPath: log, contents: nil)
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.currentDirectoryURL = URL(fileURLWithPath: cli.workDirectory)
        process.arguments = ["serve", "--data-dir", dataDirectory ?? cli.dataDirectory, "--ec2-port", "0", "--s3-port", "0"] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["STRATUS_SERVER"] = nil
        process.environment = environment
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    /// Waits for `DATA/serve.json` and returns the API's URL.
    func url(cli: CLI, timeout: Duration = .seconds(60)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        let file = "\(cli.dataDirectory)/serve.json"
        while ContinuousClock.now < deadline {
            if let data = FileManager.default.contents(atPath: file),
                let info = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let url = info["apiURL"] as? String,
                (info["pid"] as? Int).map({ Int32($0) == process.processIdentifier }) ?? false
            {
                return url
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "serve wrote no \(file): \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")"])
    }

    /// Sends `signal`, then SIGKILL if serve has not exited 20 s later (a signal the child
    /// inherited blocked, or a shutdown that hangs, must not leave a server running after the test).
    func kill(_ signal: Int32) {
        Foundation.kill(process.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            Foundation.kill(process.processIdentifier, SIGKILL)
            FileHandle.standardError.write(Data("Server: serve (PID \(process.processIdentifier)) did not exit 20 s after signal \(signal); killed\n".utf8))
        }
        process.waitUntilExit()
    }
}
