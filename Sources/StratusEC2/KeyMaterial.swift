import Crypto
import CryptoExtras
import Foundation
import StratusIdentity

/// A key pair CreateKeyPair makes, in the type and format the caller asked for, as AWS makes
/// them: `rsa` (2048 bits, the default) or `ed25519`; `pem` (the default: PKCS#1 for RSA, the
/// OpenSSH format for ED25519, as `ssh-keygen` writes them) or `ppk` (PuTTY's format, version 3,
/// unencrypted). The fingerprint is AWS's for a created key: the SHA-1 of the RSA private key's
/// PKCS#8 DER, colon-separated hex; the base64 SHA-256 of an ED25519 key's OpenSSH key data.
struct KeyMaterial {
    enum KeyType: String, CaseIterable { case rsa, ed25519 }
    enum Format: String, CaseIterable { case pem, ppk }

    /// The OpenSSH public key line the store keeps.
    let publicKey: String
    /// The private key, returned once.
    let privateKey: String
    let fingerprint: String

    init(type: KeyType, format: Format, comment: String) throws {
        switch type {
        case .ed25519:
            let key = Curve25519.Signing.PrivateKey()
            let blob = Self.ed25519Blob(key.publicKey.rawRepresentation)
            publicKey = "ssh-ed25519 " + blob.base64EncodedString()
            fingerprint = Data(SHA256.hash(data: blob)).base64EncodedString()
            switch format {
            case .pem: privateKey = Self.openSSHPrivateKey(key, comment: comment)
            case .ppk: privateKey = Self.puttyKey(algorithm: "ssh-ed25519", publicBlob: blob, privateBlob: Self.sshString(key.rawRepresentation), comment: comment)
            }
        case .rsa:
            let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            let primitives = try key.publicKey.getKeyPrimitives()
            let blob = Self.sshString(Data("ssh-rsa".utf8)) + Self.mpint(primitives.publicExponent) + Self.mpint(primitives.modulus)
            publicKey = "ssh-rsa " + blob.base64EncodedString()
            let digest = Array(AWSEncoding.hex(Insecure.SHA1.hash(data: key.pkcs8DERRepresentation)))
            fingerprint = stride(from: 0, to: digest.count, by: 2).map { String(digest[$0..<$0 + 2]) }.joined(separator: ":")
            switch format {
            case .pem:
                privateKey = key.pemRepresentation
            case .ppk:
                // RSAPrivateKey ::= SEQUENCE { version, n, e, d, p, q, dp, dq, qinv }; PuTTY keeps d, p, q and qinv.
                guard let fields = Self.derIntegers(key.derRepresentation), fields.count == 9 else { throw KeyMaterialError() }
                let secret = Self.mpint(fields[3]) + Self.mpint(fields[4]) + Self.mpint(fields[5]) + Self.mpint(fields[8])
                privateKey = Self.puttyKey(algorithm: "ssh-rsa", publicBlob: blob, privateBlob: secret, comment: comment)
            }
        }
    }

    struct KeyMaterialError: Error {}

    /// The SSH wire form of an Ed25519 public key: string "ssh-ed25519", string key.
    static func ed25519Blob(_ key: Data) -> Data { sshString(Data("ssh-ed25519".utf8)) + sshString(key) }

    static func sshString(_ data: Data) -> Data {
        var length = UInt32(data.count).bigEndian
        return Data(bytes: &length, count: 4) + data
    }

    /// An SSH mpint of a big-endian unsigned integer: no leading zeros, one added when the top bit is set.
    static func mpint(_ bytes: Data) -> Data {
        var value = Data(bytes.drop { $0 == 0 })
        if let first = value.first, first & 0x80 != 0 { value.insert(0, at: 0) }
        return sshString(value)
    }

    /// The INTEGERs of a DER SEQUENCE of INTEGERs (a PKCS#1 RSAPrivateKey); nil if it is not one.
    static func derIntegers(_ der: Data) -> [Data]? {
        let bytes = [UInt8](der)
        var index = 0
        func length() -> Int? {
            guard index < bytes.count else { return nil }
            let first = Int(bytes[index])
            index += 1
            if first < 0x80 { return first }
            let count = first & 0x7f
            guard count <= 4, index + count <= bytes.count else { return nil }
            var value = 0
            for _ in 0..<count {
                value = value << 8 | Int(bytes[index])
                index += 1
            }
            return value
        }
        guard bytes.first == 0x30 else { return nil }
        index = 1
        guard let total = length(), index + total == bytes.count else { return nil }
        var integers: [Data] = []
        while index < bytes.count {
            guard bytes[index] == 0x02 else { return nil }
            index += 1
            guard let count = length(), index + count <= bytes.count else { return nil }
            integers.append(Data(bytes[index..<index + count]))
            index += count
        }
        return integers
    }

    /// An unencrypted `openssh-key-v1` private key file, as `ssh-keygen -t ed25519` writes it.
    static func openSSHPrivateKey(_ key: Curve25519.Signing.PrivateKey, comment: String) -> String {
        let publicKey = key.publicKey.rawRepresentation
        var check = UInt32.random(in: 0...UInt32.max).bigEndian
        var block = Data(bytes: &check, count: 4) + Data(bytes: &check, count: 4)
        block += sshString(Data("ssh-ed25519".utf8)) + sshString(publicKey) + sshString(key.rawRepresentation + publicKey) + sshString(Data(comment.utf8))
        var pad: UInt8 = 1
        while block.count % 8 != 0 {
            block.append(pad)
            pad += 1
        }
        var count = UInt32(1).bigEndian
        var body = Data("openssh-key-v1".utf8) + Data([0])
        body += sshString(Data("none".utf8)) + sshString(Data("none".utf8)) + sshString(Data())
        body += Data(bytes: &count, count: 4) + sshString(ed25519Blob(publicKey)) + sshString(block)
        return "-----BEGIN OPENSSH PRIVATE KEY-----\n" + lines(body.base64EncodedString(), width: 70).joined(separator: "\n") + "\n-----END OPENSSH PRIVATE KEY-----\n"
    }

    /// A PuTTY `.ppk` file, version 3, unencrypted: its MAC is an HMAC-SHA-256 with an empty key
    /// over the algorithm, encryption, comment and both blobs.
    static func puttyKey(algorithm: String, publicBlob: Data, privateBlob: Data, comment: String) -> String {
        let macInput = sshString(Data(algorithm.utf8)) + sshString(Data("none".utf8)) + sshString(Data(comment.utf8)) + sshString(publicBlob) + sshString(privateBlob)
        let mac = HMAC<SHA256>.authenticationCode(for: macInput, using: SymmetricKey(data: Data()))
        let publicLines = lines(publicBlob.base64EncodedString(), width: 64)
        let privateLines = lines(privateBlob.base64EncodedString(), width: 64)
        return (["PuTTY-User-Key-File-3: \(algorithm)", "Encryption: none", "Comment: \(comment)", "Public-Lines: \(publicLines.count)"] + publicLines
            + ["Private-Lines: \(privateLines.count)"] + privateLines + ["Private-MAC: \(AWSEncoding.hex(Data(mac)))"]).joined(separator: "\n") + "\n"
    }

    static func lines(_ text: String, width: Int) -> [Substring] {
        var lines: [Substring] = []
        var index = text.startIndex
        while index < text.endIndex {
            let end = text.index(index, offsetBy: width, limitedBy: text.endIndex) ?? text.endIndex
            lines.append(text[index..<end])
            index = end
        }
        return lines
    }
}
