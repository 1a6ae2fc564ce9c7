import Crypto
import Foundation

/// Encrypts secrets at rest (AES-256-GCM) with a key kept in a mode-0600 file beside the database.
///
/// The database alone (a backup, a copied file) does not reveal a secret; the key file does, so
/// it never leaves the data directory and is created readable by its owner only.
struct SecretBox: Sendable {
    private let key: SymmetricKey

    /// Reads the key file, creating it (32 random bytes, mode 0600) on first use.
    init(keyFile: String) throws {
        let manager = FileManager.default
        if let data = manager.contents(atPath: keyFile) {
            guard data.count == 32 else { throw StoreError.secretKey("\(keyFile) is not a 32-byte key; restore it from backup or remove it (stored secrets are then lost)") }
            key = SymmetricKey(data: data)
            return
        }
        let fresh = SymmetricKey(size: .bits256)
        let data = fresh.withUnsafeBytes { Data($0) }
        guard manager.createFile(atPath: keyFile, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw StoreError.secretKey("cannot create \(keyFile)")
        }
        key = fresh
    }

    /// An in-memory key, for stores that live in memory (tests).
    init() { key = SymmetricKey(size: .bits256) }

    func seal(_ plaintext: String) throws -> Data {
        guard let combined = try AES.GCM.seal(Data(plaintext.utf8), using: key).combined else {
            throw StoreError.secretKey("could not encrypt a secret")
        }
        return combined
    }

    func open(_ sealed: Data) throws -> String {
        do {
            return String(decoding: try AES.GCM.open(try AES.GCM.SealedBox(combined: sealed), using: key), as: UTF8.self)
        } catch {
            throw StoreError.secretKey("a stored secret does not decrypt with this data directory's secret.key (was the key file replaced?)")
        }
    }
}
