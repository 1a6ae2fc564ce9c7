import Foundation
import StratusTestSupport
import Testing

@testable import StratusEC2

/// Fingerprints as AWS reports them, checked against ssh-keygen and openssl (issue 12, part 3).
@Suite struct KeyFingerprintTests {
    /// Runs `script` with /bin/sh and returns its standard output, trimmed.
    static func shell(_ script: String) async throws -> String {
        try await offPool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", script]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    @Test("an imported RSA key: MD5 of its DER public key, as openssl computes it; ED25519: base64 SHA-256, as ssh-keygen")
    func matchesTools() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-fp-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for bits in [1024, 2048, 4096] {
            let key = "\(directory)/rsa\(bits)"
            _ = try await Self.shell("ssh-keygen -q -t rsa -b \(bits) -N '' -C test -f \(key)")
            let publicKey = try String(contentsOfFile: key + ".pub", encoding: .utf8)
            let expected = try await Self.shell("ssh-keygen -e -m PKCS8 -f \(key).pub | openssl pkey -pubin -outform DER | openssl md5 -c | sed 's/.*= //'")
            #expect(expected.count == 47, "openssl printed \(expected)")
            #expect(KeyFingerprint.of(publicKey) == expected, "RSA \(bits)")
        }
        let key = "\(directory)/ed"
        _ = try await Self.shell("ssh-keygen -q -t ed25519 -N '' -C test -f \(key)")
        let publicKey = try String(contentsOfFile: key + ".pub", encoding: .utf8)
        let sshKeygen = try await Self.shell("ssh-keygen -l -E sha256 -f \(key).pub | cut -d' ' -f2")  // SHA256:<base64 without padding>
        let ours = KeyFingerprint.of(publicKey)
        #expect(ours.hasSuffix("=") && "SHA256:" + ours.trimmingCharacters(in: CharacterSet(charactersIn: "=")) == sshKeygen, "\(ours) vs \(sshKeygen)")
    }
}
