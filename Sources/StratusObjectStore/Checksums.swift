import Crypto
import Foundation

/// The checksums S3 clients send (`x-amz-checksum-crc32`, …): computed while the body streams to
/// disk, compared with what the client declared, stored, and returned with `ChecksumMode=ENABLED`.
enum ChecksumAlgorithm: String, CaseIterable, Sendable {
    case crc32 = "CRC32", crc32c = "CRC32C", crc64nvme = "CRC64NVME", sha1 = "SHA1", sha256 = "SHA256"

    /// The header that carries it: `x-amz-checksum-crc32`.
    var header: String { "x-amz-checksum-" + rawValue.lowercased() }

    init?(header name: String) {
        guard let found = Self.allCases.first(where: { $0.header == name.lowercased() }) else { return nil }
        self = found
    }
}

/// A running checksum of one algorithm.
struct RunningChecksum {
    let algorithm: ChecksumAlgorithm
    private var crc: UInt64
    private var sha1 = Insecure.SHA1()
    private var sha256 = SHA256()

    init(_ algorithm: ChecksumAlgorithm) {
        self.algorithm = algorithm
        crc = algorithm == .crc64nvme ? ~UInt64(0) : UInt64(~UInt32(0))
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        switch algorithm {
        case .crc32: crc = UInt64(CRCTables.update32(UInt32(crc), bytes, CRCTables.crc32))
        case .crc32c: crc = UInt64(CRCTables.update32(UInt32(crc), bytes, CRCTables.crc32c))
        case .crc64nvme: crc = CRCTables.update64(crc, bytes)
        case .sha1: sha1.update(bufferPointer: bytes)
        case .sha256: sha256.update(bufferPointer: bytes)
        }
    }

    /// The base64 of the big-endian digest, as the headers carry it.
    func finish() -> String {
        switch algorithm {
        case .crc32, .crc32c:
            var value = (~UInt32(truncatingIfNeeded: crc)).bigEndian
            return Data(bytes: &value, count: 4).base64EncodedString()
        case .crc64nvme:
            var value = (~crc).bigEndian
            return Data(bytes: &value, count: 8).base64EncodedString()
        case .sha1: return Data(sha1.finalize()).base64EncodedString()
        case .sha256: return Data(sha256.finalize()).base64EncodedString()
        }
    }
}

/// Reflected CRC tables, eight per polynomial (slicing-by-8).
enum CRCTables {
    static let crc32 = tables(UInt32(0xEDB8_8320))
    static let crc32c = tables(UInt32(0x82F6_3B78))
    static let crc64 = tables(UInt64(0x9A6C_9329_AC4B_C9B5))

    /// Eight tables of 256 entries for a reflected polynomial: table 0 is the bytewise CRC,
    /// table k the CRC of a byte followed by k zero bytes.
    static func tables<Word: FixedWidthInteger & UnsignedInteger>(_ polynomial: Word) -> [Word] {
        var table = [Word](repeating: 0, count: 256 * 8)
        for byte in 0..<256 {
            var crc = Word(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ polynomial : crc >> 1 }
            table[byte] = crc
        }
        for slice in 1..<8 {
            for byte in 0..<256 {
                let previous = table[(slice - 1) * 256 + byte]
                table[slice * 256 + byte] = (previous >> 8) ^ table[Int(previous & 0xff)]
            }
        }
        return table
    }

    static func update32(_ start: UInt32, _ bytes: UnsafeRawBufferPointer, _ table: [UInt32]) -> UInt32 {
        var crc = start
        table.withUnsafeBufferPointer { t in
            var index = 0
            let count = bytes.count
            while index + 8 <= count {
                let low = crc ^ (UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2]) << 16 | UInt32(bytes[index + 3]) << 24)
                crc = t[7 * 256 + Int(low & 0xff)] ^ t[6 * 256 + Int((low >> 8) & 0xff)] ^ t[5 * 256 + Int((low >> 16) & 0xff)] ^ t[4 * 256 + Int(low >> 24)]
                    ^ t[3 * 256 + Int(bytes[index + 4])] ^ t[2 * 256 + Int(bytes[index + 5])] ^ t[256 + Int(bytes[index + 6])] ^ t[Int(bytes[index + 7])]
                index += 8
            }
            while index < count {
                crc = (crc >> 8) ^ t[Int((crc ^ UInt32(bytes[index])) & 0xff)]
                index += 1
            }
        }
        return crc
    }

    static func update64(_ start: UInt64, _ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var crc = start
        crc64.withUnsafeBufferPointer { t in
            var index = 0
            let count = bytes.count
            while index + 8 <= count {
                var word: UInt64 = 0
                for offset in 0..<8 { word |= UInt64(bytes[index + offset]) << (8 * offset) }
                let value = crc ^ word
                crc = t[7 * 256 + Int(value & 0xff)] ^ t[6 * 256 + Int((value >> 8) & 0xff)] ^ t[5 * 256 + Int((value >> 16) & 0xff)]
                    ^ t[4 * 256 + Int((value >> 24) & 0xff)] ^ t[3 * 256 + Int((value >> 32) & 0xff)] ^ t[2 * 256 + Int((value >> 40) & 0xff)]
                    ^ t[256 + Int((value >> 48) & 0xff)] ^ t[Int(value >> 56)]
                index += 8
            }
            while index < count {
                crc = (crc >> 8) ^ t[Int((crc ^ UInt64(bytes[index])) & 0xff)]
                index += 1
            }
        }
        return crc
    }
}
