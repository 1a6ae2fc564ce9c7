import Foundation

/// Remembers what a manifest file parsed into, keyed by a digest of everything the parse depends on.
///
/// Parsing is a pure function of the file's name and bytes, the default project and the parser
/// itself (the salt), so a digest of those identifies the result exactly. Comparing an
/// unchanged set of 100,000 resources then costs reading and hashing the files instead of
/// parsing them. Only files that parsed without errors are remembered.
public protocol ManifestCache: Sendable {
    /// The stored bodies for the digests that are known.
    func cachedManifests(_ digests: [String]) -> [String: String]
    /// Stores bodies by digest (best effort: a read-only store simply does not remember).
    func cacheManifests(_ bodies: [String: String])
}

/// The text form of a parsed file's documents in the manifest cache.
///
/// One line per document, tab-separated fields. Every field is either canonical JSON (which
/// escapes tabs and newlines) or a name checked by the validator, so no escaping is needed; a
/// body that does not read back cleanly is treated as a cache miss.
enum ManifestCacheCodec {
    /// Bump when the parser or the document layout changes meaning.
    static let version = "stratus-manifest-cache-1"

    static func digest(_ source: ManifestSource, defaultProject: String?, salt: String) -> String {
        var data = Data("\(version)\u{0}\(salt)\u{0}\(defaultProject ?? "")\u{0}\(source.name)\u{0}".utf8)
        data.append(source.data)
        return CanonicalJSON.sha256(data)
    }

    static func encode(_ documents: [ManifestDocument]) -> String? {
        var lines: [String] = []
        for document in documents {
            let references = document.references.map { reference in
                [reference.target.kind.rawValue, reference.target.project, reference.target.name, reference.allowsPublicImage ? "1" : "0", renderPath(reference.path)].joined(separator: ",")
            }
            let fields = [
                document.key.kind.rawValue, document.key.project, document.key.name,
                "\(document.location.line):\(document.location.column)", document.specHash, document.specJSON,
                document.labelsJSON, document.annotationsJSON, references.joined(separator: ";"), document.fieldLocations.encoded,
            ]
            guard !fields.contains(where: { $0.contains("\t") || $0.contains("\n") }),
                !references.contains(where: { $0.contains(";") }) else { return nil }
            lines.append(fields.joined(separator: "\t"))
        }
        return lines.joined(separator: "\n")
    }

    static func decode(_ body: String, file: String) -> [ManifestDocument]? {
        // Byte-level splitting: Character-level String splitting is most of the cost at 100k
        // documents. The field buffers are reused from line to line, so a line allocates only
        // the strings it yields.
        var body = body
        return body.withUTF8 { bytes -> [ManifestDocument]? in
            var documents: [ManifestDocument] = []
            var fields: [Slice<UnsafeBufferPointer<UInt8>>] = []
            var parts: [Slice<UnsafeBufferPointer<UInt8>>] = []
            fields.reserveCapacity(11)
            parts.reserveCapacity(6)
            var lineStart = bytes.startIndex
            while lineStart < bytes.endIndex {
                let lineEnd = bytes[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.endIndex
                let line = bytes[lineStart..<lineEnd]
                lineStart = lineEnd + 1
                if line.isEmpty { continue }
                split(line, UInt8(ascii: "\t"), into: &fields)
                guard fields.count == 10, let kind = Kind(rawValue: text(fields[0])), let start = position(fields[3]) else { return nil }
                var references: [Reference] = []
                var entryStart = fields[8].startIndex
                while entryStart < fields[8].endIndex {
                    let entryEnd = fields[8][entryStart...].firstIndex(of: UInt8(ascii: ";")) ?? fields[8].endIndex
                    let entry = fields[8][entryStart..<entryEnd]
                    entryStart = entryEnd + 1
                    if entry.isEmpty { continue }
                    split(entry, UInt8(ascii: ","), into: &parts)
                    guard parts.count == 5, let target = Kind(rawValue: text(parts[0])) else { return nil }
                    references.append(Reference(target: ResourceKey(kind: target, project: text(parts[1]), name: text(parts[2])), renderedPath: text(parts[4]), allowsPublicImage: parts[3].first == UInt8(ascii: "1")))
                }
                documents.append(ManifestDocument(
                    key: ResourceKey(kind: kind, project: text(fields[1]), name: text(fields[2])),
                    location: SourceLocation(file: file, line: start.0, column: start.1),
                    specJSON: text(fields[5]), specHash: text(fields[4]), labelsJSON: text(fields[6]),
                    annotationsJSON: text(fields[7]), references: references, fieldLocations: .encoded(text(fields[9]))
                ))
            }
            return documents.isEmpty ? nil : documents
        }
    }

    /// Splits `bytes` at `separator` into `parts` (emptied first, its storage kept).
    private static func split(_ bytes: Slice<UnsafeBufferPointer<UInt8>>, _ separator: UInt8, into parts: inout [Slice<UnsafeBufferPointer<UInt8>>]) {
        parts.removeAll(keepingCapacity: true)
        var start = bytes.startIndex
        var index = start
        while index < bytes.endIndex {
            if bytes[index] == separator {
                parts.append(bytes[start..<index])
                start = index + 1
            }
            index += 1
        }
        parts.append(bytes[start..<bytes.endIndex])
    }

    private static func text(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: bytes), as: UTF8.self)
    }

    /// Parses `line:column` from bytes.
    private static func position(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> (Int, Int)? {
        var numbers = [0, 0]
        var which = 0
        var digits = 0
        for byte in bytes {
            if byte == UInt8(ascii: ":") && which == 0 && digits > 0 {
                which = 1
                digits = 0
            } else if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") && digits < 9 {
                numbers[which] = numbers[which] * 10 + Int(byte - UInt8(ascii: "0"))
                digits += 1
            } else {
                return nil
            }
        }
        return which == 1 && digits > 0 ? (numbers[0], numbers[1]) : nil
    }
}
