import Crypto
import Foundation
import StratusIdentity
import StratusModel

/// Key fingerprints as EC2 reports them, so a client comparing them with AWS's sees the same
/// form: an RSA public key by the MD5 of its DER SubjectPublicKeyInfo, colon-separated hex (what
/// `ssh-keygen -e -m PKCS8 -f k.pub | openssl pkey -pubin -outform DER | openssl md5 -c`
/// prints); an ED25519 key by the base64 SHA-256 of its OpenSSH key data. Other key types get
/// the OpenSSH SHA-256 form.
enum KeyFingerprint {
    static func of(_ publicKey: String) -> String {
        let fields = publicKey.split(whereSeparator: \.isWhitespace)
        guard fields.count >= 2, let blob = Data(base64Encoded: String(fields[1])) else { return "" }
        if fields[0] == "ssh-rsa", let der = rsaSubjectPublicKeyInfo(blob: [UInt8](blob)) {
            let hex = Array(AWSEncoding.hex(Insecure.MD5.hash(data: der)))
            return stride(from: 0, to: hex.count, by: 2).map { String(hex[$0..<$0 + 2]) }.joined(separator: ":")
        }
        let digest = Data(SHA256.hash(data: blob)).base64EncodedString()
        if fields[0] == "ssh-ed25519" { return digest }
        return "SHA256:" + digest.trimmingCharacters(in: CharacterSet(charactersIn: "="))
    }

    /// The DER SubjectPublicKeyInfo of an OpenSSH `ssh-rsa` key blob (string type, mpint e, mpint n).
    static func rsaSubjectPublicKeyInfo(blob: [UInt8]) -> Data? {
        guard let fields = KeyPairSpec.keyFields(blob), fields.count == 3 else { return nil }
        func integer(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
            var value = Array(bytes.drop { $0 == 0 })
            if value.isEmpty || value[0] & 0x80 != 0 { value.insert(0, at: 0) }  // DER integers are signed
            return tlv(0x02, value)
        }
        let rsaPublicKey = tlv(0x30, integer(fields[2]) + integer(fields[1]))  // SEQUENCE { n, e }
        let algorithm = tlv(0x30, [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00])  // rsaEncryption, NULL
        return Data(tlv(0x30, algorithm + tlv(0x03, [0x00] + rsaPublicKey)))
    }

    /// A DER tag-length-value.
    static func tlv(_ tag: UInt8, _ value: [UInt8]) -> [UInt8] {
        var length: [UInt8] = []
        if value.count < 0x80 {
            length = [UInt8(value.count)]
        } else {
            var count = value.count
            while count > 0 {
                length.insert(UInt8(count & 0xff), at: 0)
                count >>= 8
            }
            length.insert(0x80 | UInt8(length.count), at: 0)
        }
        return [tag] + length + value
    }
}
