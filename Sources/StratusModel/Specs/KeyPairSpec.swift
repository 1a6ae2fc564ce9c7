import Foundation

/// An SSH public key that instances can be launched with.
public struct KeyPairSpec: SpecBody {
    public static let kind = Kind.keyPair

    /// An OpenSSH public key line; when absent, Stratus generates the pair and shows the private key once.
    public var publicKey: String?
    /// The user the key belongs to (its LDAP entry sits under theirs); default: the project's manager.
    public var user: String?

    public init(publicKey: String? = nil, user: String? = nil) {
        self.publicKey = publicKey
        self.user = user
    }

    public func references(project: String?) -> [Reference] {
        guard let user else { return [] }
        return [Reference(kind: .user, project: nil, name: user, path: [.key("user")])]
    }

    static let keyTypes = [
        "ssh-rsa", "ssh-ed25519", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
    ]

    public func validate(_ validator: inout Validator) {
        validator.name(user, at: [.key("user")])
        guard let publicKey else { return }
        let fields = publicKey.split(whereSeparator: \.isWhitespace)
        guard fields.count >= 2, let type = fields.first.map(String.init), Self.keyTypes.contains(type) else {
            validator.fail(
                [.key("publicKey")],
                "expected an OpenSSH public key line like \"ssh-ed25519 AAAA… comment\"",
                hint: fields.first.flatMap { Suggestion.hint(for: String($0), in: Self.keyTypes) }
            )
            return
        }
        let body = fields[1]
        guard publicKey.utf8.count <= Self.maximumLine else {
            validator.fail([.key("publicKey")], "at most \(Self.maximumLine) bytes (a 16384-bit RSA key is about 2,800), got \(publicKey.utf8.count)")
            return
        }
        let base64 = body.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "+" || $0 == "/" || $0 == "=") }
        guard base64, body.count % 4 == 0, body.count >= 16, let blob = Data(base64Encoded: String(body)) else {
            validator.fail([.key("publicKey")], "the key data after \"\(type)\" is not valid base64")
            return
        }
        if let problem = Self.blobProblem(type: type, blob: [UInt8](blob)) {
            validator.fail([.key("publicKey")], "not a valid \(type) key: \(problem)", hint: "paste the whole line of the .pub file ssh-keygen wrote")
        }
    }

    /// The length-prefixed fields of OpenSSH key data (RFC 4253 §6.6: uint32 length, bytes),
    /// or nil when a length runs past the end.
    public static func keyFields(_ blob: [UInt8]) -> [ArraySlice<UInt8>]? {
        var fields: [ArraySlice<UInt8>] = []
        var index = 0
        while index < blob.count {
            guard index + 4 <= blob.count else { return nil }
            let length = blob[index..<index + 4].reduce(0) { $0 << 8 | Int($1) }
            index += 4
            guard length <= blob.count - index else { return nil }
            fields.append(blob[index..<index + length])
            index += length
        }
        return fields
    }

    /// The longest public-key line accepted.
    public static let maximumLine = 8192

    /// What is wrong with the key blob of an OpenSSH line (RFC 4253 §6.6: length-prefixed fields,
    /// the first naming the type), or nil. RSA keys must have a modulus of 1024 to 16384 bits,
    /// ED25519 keys 32 bytes.
    static func blobProblem(type: String, blob: [UInt8]) -> String? {
        guard let fields = keyFields(blob) else { return "a field length runs past the end of the key data" }
        guard let first = fields.first, String(decoding: first, as: UTF8.self) == type else {
            return "the key data names another type than \"\(type)\""
        }
        switch type {
        case "ssh-rsa":
            guard fields.count == 3 else { return "expected an exponent and a modulus" }
            let modulus = fields[2].drop { $0 == 0 }
            let bits = modulus.isEmpty ? 0 : modulus.count * 8 - modulus.first!.leadingZeroBitCount
            guard (1024...16384).contains(bits) else { return "the modulus has \(bits) bits; 1024 to 16384 are accepted" }
        case "ssh-ed25519":
            guard fields.count == 2, fields[1].count == 32 else { return "expected one 32-byte key" }
        default:
            guard fields.count >= 2 else { return "the key data holds no key" }
        }
        return nil
    }
}
