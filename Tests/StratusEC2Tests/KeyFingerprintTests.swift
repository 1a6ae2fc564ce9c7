import Foundation
import StratusTestSupport
import StratusModel
import StratusStore
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
            let data = output.fileHandleForReading.readToEndRetrying()
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

    @Test("CreateKeyPair makes the key type and format asked for; openssl, ssh-keygen and puttygen read them and agree on the fingerprint", arguments: [
        ("rsa", "pem"), ("ed25519", "pem"), ("rsa", "ppk"), ("ed25519", "ppk"), (nil, nil),
    ] as [(String?, String?)])
    func createdKeys(type: String?, format: String?) async throws {
        guard try await Self.shell("command -v puttygen") != "" else {
            Issue.record("puttygen is missing: make install-deps installs putty-tools, which reads the ppk keys")
            return
        }
        let store = try EC2RouterTests.store()
        let name = "made-\(type ?? "default")-\(format ?? "default")"
        var form = "Action=CreateKeyPair&KeyName=\(name)"
        if let type { form += "&KeyType=\(type)" }
        if let format { form += "&KeyFormat=\(format)" }
        let answers = try await EC2FidelityTests.send(store, [form, "Action=DescribeKeyPairs&KeyName.1=\(name)&IncludePublicKey=true"])
        #expect(answers[0].status == 200, "\(answers[0].body)")
        let material = try #require(answers[0].body.firstMatch(of: /<keyMaterial>([^<]*)<\/keyMaterial>/)?.1).description
        let fingerprint = try #require(answers[0].body.firstMatch(of: /<keyFingerprint>([^<]*)<\/keyFingerprint>/)?.1).description
        let stored = try #require(answers[1].body.firstMatch(of: /<publicKey>([^<]*)<\/publicKey>/)?.1).description
        #expect(answers[1].body.contains("<keyFingerprint>\(fingerprint)</keyFingerprint>"), "DescribeKeyPairs shows the created key's fingerprint")
        #expect(answers[1].body.contains("<keyType>\(type ?? "rsa")</keyType>"))

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-key-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = "\(directory)/key"
        try material.write(toFile: file, atomically: true, encoding: .utf8)
        _ = try await Self.shell("chmod 600 \(file)")
        let publicKey: String
        if format == "ppk" {
            #expect(material.hasPrefix("PuTTY-User-Key-File-3: \(type == "ed25519" ? "ssh-ed25519" : "ssh-rsa")\n"))
            publicKey = try await Self.shell("puttygen \(file) -O public-openssh -o /dev/stdout")
        } else {
            #expect(material.hasPrefix(type == "ed25519" ? "-----BEGIN OPENSSH PRIVATE KEY-----" : "-----BEGIN RSA PRIVATE KEY-----"), "\(material.prefix(40))")
            publicKey = try await Self.shell("ssh-keygen -y -f \(file)")
        }
        let blob = { (line: String) in line.split(separator: " ").prefix(2).joined(separator: " ") }
        #expect(!publicKey.isEmpty && blob(publicKey) == blob(stored), "the private key's public half is the stored key: \(publicKey) vs \(stored)")
        if type == "ed25519" {
            try (publicKey + "\n").write(toFile: file + ".pub", atomically: true, encoding: .utf8)
            let sshKeygen = try await Self.shell("ssh-keygen -l -E sha256 -f \(file).pub | cut -d' ' -f2")
            #expect("SHA256:" + fingerprint.trimmingCharacters(in: CharacterSet(charactersIn: "=")) == sshKeygen, "\(fingerprint) vs \(sshKeygen)")
        } else {
            // AWS's own recipe for a key it created: the SHA-1 of the private key's PKCS#8 DER.
            let pem = format == "ppk" ? "\(directory)/from-ppk.pem" : file
            if format == "ppk" { _ = try await Self.shell("puttygen \(file) -O private-openssh -o \(pem)") }
            let expected = try await Self.shell("openssl pkcs8 -in \(pem) -inform PEM -outform DER -topk8 -nocrypt | openssl sha1 -c | sed 's/.*= //'")
            #expect(expected.count == 59 && fingerprint == expected, "\(fingerprint) vs openssl \(expected)")
        }
    }

    @Test("CreateKeyPair with an unknown KeyType or KeyFormat is InvalidParameterValue naming the choices, and makes nothing")
    func badChoices() async throws {
        let store = try EC2RouterTests.store()
        let answers = try await EC2FidelityTests.send(store, ["Action=CreateKeyPair&KeyName=k&KeyType=dsa", "Action=CreateKeyPair&KeyName=k&KeyFormat=der"])
        #expect(answers[0].code == "InvalidParameterValue" && answers[0].body.contains("rsa, ed25519"), "\(answers[0].body)")
        #expect(answers[1].code == "InvalidParameterValue" && answers[1].body.contains("pem, ppk"), "\(answers[1].body)")
        #expect(try store.get(ResourceKey(kind: .keyPair, project: "acme", name: "k")) == nil)
    }
}
