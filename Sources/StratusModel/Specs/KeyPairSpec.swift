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
        let base64 = body.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "+" || $0 == "/" || $0 == "=") }
        if !base64 || body.count % 4 != 0 || body.count < 16 {
            validator.fail([.key("publicKey")], "the key data after \"\(type)\" is not valid base64")
        }
    }
}
