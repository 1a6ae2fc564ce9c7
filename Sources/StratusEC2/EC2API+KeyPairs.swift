import Crypto
import Foundation
import StratusIdentity
import StratusModel
import StratusStore

extension EC2API {
    func describeKeyPairs(_ call: EC2Call) throws -> [XMLNode] {
        let names = call.list("KeyName")
        let ids = call.list("KeyPairId")
        var items: [(String, [XMLNode])] = []
        for pair in try visible(.keyPair, call) {
            guard case .keyPair(let spec) = pair.resource.spec else { continue }
            let name = EC2Name.of(pair.metadata)
            guard names.isEmpty || names.contains(name), ids.isEmpty || ids.contains(Self.keyPairId(pair)) else { continue }
            let fingerprint = pair.metadata.annotations[Self.fingerprintAnnotation] ?? spec.publicKey.map(KeyFingerprint.of) ?? ""
            let values = ["key-name": [name], "fingerprint": [fingerprint], "key-pair-id": [Self.keyPairId(pair)]]
            guard call.filters().allSatisfy({ filter in Self.matchesTags(pair, filter.name, filter.values) ?? (values[filter.name] ?? []).contains { FilterMatch.matches($0, filter.values) } }) else { continue }
            items.append((name, [
                .text("keyPairId", Self.keyPairId(pair)), .text("keyName", name), .text("keyFingerprint", fingerprint),
                .text("keyType", spec.publicKey?.hasPrefix("ssh-rsa") == true ? "rsa" : "ed25519"), Self.tagSet(pair),
            ] + XMLNode.optional("publicKey", call.bool("IncludePublicKey") ? spec.publicKey : nil) + [.text("createTime", Self.timestamp(pair.metadata.creationTimestamp))]))
        }
        let missing = names.filter { name in !items.contains { $0.0 == name } }
        if !missing.isEmpty { throw EC2Error("InvalidKeyPair.NotFound", "The key pair '\(missing[0])' does not exist") }
        let missingIds = ids.filter { id in !items.contains { $0.1.contains { if case .text("keyPairId", id) = $0 { true } else { false } } } }
        if !missingIds.isEmpty { throw EC2Error("InvalidKeyPair.NotFound", "The key pair ID '\(missingIds[0])' does not exist") }
        return [.set("keySet", items.sorted { $0.0 < $1.0 }.map(\.1))]
    }

    /// Key pairs have no EC2 id of their own in the store; this one is stable per project and name.
    static func keyPairId(_ pair: StoredResource) -> String {
        "key-" + AWSEncoding.hex(SHA256.hash(data: Data("\(pair.key.project)/\(pair.key.name)".utf8)).prefix(8))
    }

    /// A created RSA key's fingerprint is the SHA-1 of its private key, which is not kept: the
    /// fingerprint is, in this annotation.
    static let fingerprintAnnotation = "ec2.stratus/key-fingerprint"

    func createKeyPair(_ call: EC2Call) throws -> [XMLNode] {
        let project = try call.project()
        try call.authorize(.keyPair, project: project)
        let name = try Self.ec2Name(call, "KeyName")
        let type = try call.choice("KeyType", KeyMaterial.KeyType.self) ?? .rsa
        let format = try call.choice("KeyFormat", KeyMaterial.Format.self) ?? .pem
        let labels = try Self.tagSpecification(call, resourceType: "key-pair")
        try refuseDuplicateKey(name, project: project)
        let key = try KeyMaterial(type: type, format: format, comment: name)
        let spec = KeyPairSpec(publicKey: key.publicKey + " " + name, user: call.principal.user == "admin" ? nil : call.principal.user)
        var metadata = Self.metadata(ec2Name: name, project: project)
        metadata.annotations[Self.fingerprintAnnotation] = key.fingerprint
        metadata.labels = labels
        try write([Resource(metadata: metadata, spec: .keyPair(spec))], createOnly: Self.duplicateKey(name, resource: metadata.name))
        let stored = try store.get(ResourceKey(kind: .keyPair, project: project, name: metadata.name))
        return [
            .text("keyName", name), .text("keyFingerprint", key.fingerprint),
            .text("keyMaterial", key.privateKey), .text("keyPairId", stored.map(Self.keyPairId) ?? ""),
        ]
    }

    func importKeyPair(_ call: EC2Call) throws -> [XMLNode] {
        let project = try call.project()
        try call.authorize(.keyPair, project: project)
        let name = try Self.ec2Name(call, "KeyName")
        let material = try call.required("PublicKeyMaterial")
        let labels = try Self.tagSpecification(call, resourceType: "key-pair")
        try refuseDuplicateKey(name, project: project)
        // botocore sends the key base64-encoded (a blob); older clients send the line itself.
        let line = Data(base64Encoded: material).map { String(decoding: $0, as: UTF8.self) } ?? material
        let publicKey = line.trimmingCharacters(in: .whitespacesAndNewlines)
        do {
            var metadata = Self.metadata(ec2Name: name, project: project)
            metadata.labels = labels
            try write([Resource(metadata: metadata, spec: .keyPair(KeyPairSpec(publicKey: publicKey, user: call.principal.user == "admin" ? nil : call.principal.user)))],
                      createOnly: Self.duplicateKey(name, resource: metadata.name))
        } catch let error as EC2Error where error.code == "InvalidParameterValue" {
            throw EC2Error("InvalidKey.Format", "Key is not in valid OpenSSH public key format")
        }
        let stored = try store.get(ResourceKey(kind: .keyPair, project: project, name: EC2Name.resourceName(for: name)))
        return [.text("keyName", name), .text("keyFingerprint", KeyFingerprint.of(publicKey)), .text("keyPairId", stored.map(Self.keyPairId) ?? "")]
    }

    func deleteKeyPair(_ call: EC2Call) throws -> [XMLNode] {
        let project = try call.project()
        try call.authorize(.keyPair, project: project)
        let stored: StoredResource?
        if let name = call.string("KeyName") {
            stored = try store.named(.keyPair, ec2Name: name, project: project)
        } else if let id = call.string("KeyPairId") {
            stored = try store.list(kind: .keyPair, project: project).first { Self.keyPairId($0) == id && !$0.isTerminating }
        } else {
            throw EC2Error.missing("KeyName")
        }
        // As on EC2, deleting a key that does not exist succeeds.
        guard let stored else { return [.text("return", "true")] }
        if case .keyPair(let spec) = stored.resource.spec, !call.principal.canManageKeyPair(owner: spec.user, project: project) {
            throw EC2Error.unauthorized(call.principal.keyPairDenial(owner: spec.user, project: project, name: EC2Name.of(stored.metadata)))
        }
        _ = try store.delete([stored.key], reason: "deleted by \(call.principal.user) through the EC2 API")
        return [.text("return", "true")]
    }

    /// A create whose resource name is taken (by the same EC2 name, a concurrent create, or
    /// another key pair that happens to be named so) changes nothing.
    static func duplicateKey(_ name: String, resource: String) -> EC2Error {
        EC2Error("InvalidKeyPair.Duplicate", "The keypair '\(name)' already exists\(resource == name ? "" : " (its resource name \(resource) is taken)").")
    }

    private func refuseDuplicateKey(_ name: String, project: String) throws {
        if try store.named(.keyPair, ec2Name: name, project: project) != nil {
            throw EC2Error("InvalidKeyPair.Duplicate", "The keypair '\(name)' already exists.")
        }
    }
}
