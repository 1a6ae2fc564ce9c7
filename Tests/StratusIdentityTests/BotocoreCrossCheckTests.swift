import Foundation
import StratusTestSupport
import Testing

@testable import StratusIdentity

/// Requests signed by botocore itself (the library boto3 and awscli sign with), verified by Stratus.
@Suite struct BotocoreCrossCheckTests {
    struct Signed: Decodable {
        let signer: String
        let accessKey: String
        let secretKey: String
        let method: String
        let path: String
        let query: String
        let headers: [[String]]
        let body: String
        let s3: Bool

        var request: SignableRequest {
            SignableRequest(method: method, path: path, query: query, headers: headers.map { (name: $0[0], value: $0[1]) }, body: Data(base64Encoded: body))
        }
    }

    static func botocoreRequests(perSigner: Int, seed: Int) throws -> [Signed] {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("botocore_sign.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, "\(perSigner)", "\(seed)"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readToEndRetrying()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "botocore_sign.py failed; is botocore installed (make install-deps)?"])
        }
        return try output.split(separator: UInt8(ascii: "\n")).map { try JSONDecoder().decode(Signed.self, from: Data($0)) }
    }

    @Test("every request botocore signs (SigV4 header and query, S3 SigV4, SigV2 query and form, S3 SigV2 header and query) verifies")
    func botocoreSignaturesVerify() throws {
        let signed = try Self.botocoreRequests(perSigner: 25, seed: 7)
        #expect(signed.count == 25 * 9)
        var failures: [String] = []
        for item in signed {
            do {
                let verified = try RequestVerifier(service: item.s3 ? .s3 : .standard).verify(item.request) { $0 == item.accessKey ? item.secretKey : nil }
                if verified.accessKey != item.accessKey { failures.append("\(item.signer): wrong key") }
            } catch {
                failures.append("\(item.signer) \(item.method) \(item.path)?\(item.query): \(error)")
            }
        }
        #expect(failures.isEmpty, "\(failures.count) of \(signed.count) refused:\n\(failures.prefix(8).joined(separator: "\n"))")
    }

    @Test("the same requests with a wrong secret, a changed path or a changed parameter are refused")
    func tamperedSignaturesFail() throws {
        let signed = try Self.botocoreRequests(perSigner: 10, seed: 11)
        var accepted: [String] = []
        for item in signed {
            let verifier = RequestVerifier(service: item.s3 ? .s3 : .standard)
            if (try? verifier.verify(item.request) { _ in item.secretKey + "x" }) != nil { accepted.append("\(item.signer) with a wrong secret") }
            var moved = item.request
            moved.path += "x"
            if (try? verifier.verify(moved) { _ in item.secretKey }) != nil { accepted.append("\(item.signer) with a changed path") }
            var changed = item.request
            // S3's SigV2 signs only sub-resources (?acl, ?uploadId…) of the query, as on AWS.
            if !changed.query.isEmpty, !item.signer.hasSuffix("presigned"), item.signer != "hmacv1-header" {
                changed.query = changed.query.replacingOccurrences(of: "Version=2016-11-15", with: "Version=2016-11-16") + "&extra=1"
                if (try? verifier.verify(changed) { _ in item.secretKey }) != nil { accepted.append("\(item.signer) with a changed query") }
            }
        }
        #expect(accepted.isEmpty, "\(accepted)")
    }
}
