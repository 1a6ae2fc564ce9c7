import Crypto
import Foundation

/// The one JSON form a value is stored, hashed and compared in: sorted keys, no extra spaces.
///
/// Two specs are the same exactly when their canonical forms are equal, so the SHA-256 of the
/// canonical form is what `diff` compares at scale.
public enum CanonicalJSON {
    /// Encodes a value in canonical form.
    public static func encode(_ value: some Encodable) throws -> Data {
        Data(try string(value).utf8)
    }

    /// Encodes a value in canonical form, as text.
    public static func string(_ value: some Encodable) throws -> String {
        try CanonicalEncoder.encode(value).canonicalText
    }

    /// The JSON tree of a value (what `string` writes out).
    public static func tree(_ value: some Encodable) throws -> JSONValue {
        try CanonicalEncoder.encode(value)
    }

    /// Hex SHA-256 of bytes.
    public static func sha256(_ data: Data) -> String {
        SHA256.hash(data: data).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
