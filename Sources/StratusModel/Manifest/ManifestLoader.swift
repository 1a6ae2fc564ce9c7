import Foundation
import Synchronization
import Yams

/// The text of one manifest file (or standard input) before parsing.
public struct ManifestSource: Sendable {
    /// The name errors use: the path as given, or `<stdin>`.
    public var name: String
    public var data: Data

    public init(name: String, data: Data) {
        self.name = name
        self.data = data
    }
}

/// Reads manifests: files, directories (recursively) and standard input; YAML or JSON, many documents each.
public enum ManifestLoader {
    /// File endings read from directories.
    public static let extensions: Set<String> = ["yaml", "yml", "json"]

    /// Expands `-f` arguments into sources: a directory yields its manifest files in path order; `-` is stdin.
    public static func sources(for paths: [String], readStandardInput: () -> Data = { FileHandle.standardInput.readDataToEndOfFile() })
        throws(ManifestErrors) -> [ManifestSource]
    {
        var sources: [ManifestSource] = []
        var errors: [ManifestError] = []
        let fileManager = FileManager.default
        for path in paths {
            if path == "-" {
                sources.append(ManifestSource(name: "<stdin>", data: readStandardInput()))
                continue
            }
            var isDirectory: ObjCBool = false
            guard fileManager.fileExists(atPath: path, isDirectory: &isDirectory) else {
                errors.append(ManifestError(location: nil, message: "\(path): no such file or directory"))
                continue
            }
            var files: [String] = []
            if isDirectory.boolValue {
                let enumerator = fileManager.enumerator(atPath: path)
                while let relative = enumerator?.nextObject() as? String {
                    // Hidden files and directories (.git, .github workflows) are not manifests.
                    if (relative as NSString).lastPathComponent.hasPrefix(".") {
                        var hiddenIsDirectory: ObjCBool = false
                        if fileManager.fileExists(atPath: (path as NSString).appendingPathComponent(relative), isDirectory: &hiddenIsDirectory), hiddenIsDirectory.boolValue {
                            enumerator?.skipDescendants()
                        }
                        continue
                    }
                    let ext = (relative as NSString).pathExtension.lowercased()
                    let full = (path as NSString).appendingPathComponent(relative)
                    var childIsDirectory: ObjCBool = false
                    if extensions.contains(ext), fileManager.fileExists(atPath: full, isDirectory: &childIsDirectory), !childIsDirectory.boolValue {
                        files.append(full)
                    }
                }
                files.sort()
            } else {
                files = [path]
            }
            for file in files {
                guard let data = fileManager.contents(atPath: file) else {
                    errors.append(ManifestError(location: nil, message: "\(file): cannot be read (check its permissions)"))
                    continue
                }
                sources.append(ManifestSource(name: file, data: data))
            }
        }
        if !errors.isEmpty { throw ManifestErrors(errors) }
        return sources
    }

    /// Parses, decodes, defaults and checks every document; fails with every problem found.
    ///
    /// Files are parsed in parallel; the result keeps file and document order. Duplicates
    /// (same kind, project and name) across the whole set are errors. With a cache, files whose
    /// digest is known are not parsed again (see `ManifestCache`); `cacheSalt` must change
    /// whenever the parser does (the CLI passes its own executable's identity).
    public static func load(
        _ sources: [ManifestSource],
        defaultProject: String? = nil,
        cache: (any ManifestCache)? = nil,
        cacheSalt: String = ""
    ) throws(ManifestErrors) -> [ManifestDocument] {
        let digests = cache == nil ? [] : sources.map { ManifestCacheCodec.digest($0, defaultProject: defaultProject, salt: cacheSalt) }
        let cached = cache?.cachedManifests(digests) ?? [:]
        let results = Mutex([([ManifestDocument], [ManifestError], String?)?](repeating: nil, count: sources.count))
        DispatchQueue.concurrentPerform(iterations: sources.count) { index in
            if cache != nil, let body = cached[digests[index]], let documents = ManifestCacheCodec.decode(body, file: sources[index].name) {
                results.withLock { $0[index] = (documents, [], nil) }
                return
            }
            let (documents, errors) = parse(sources[index], defaultProject: defaultProject)
            let body = cache != nil && errors.isEmpty ? ManifestCacheCodec.encode(documents) : nil
            results.withLock { $0[index] = (documents, errors, body) }
        }
        var documents: [ManifestDocument] = []
        var errors: [ManifestError] = []
        var fresh: [String: String] = [:]
        documents.reserveCapacity(results.withLock { $0.reduce(0) { $0 + ($1?.0.count ?? 0) } })
        results.withLock { results in
            for index in results.indices {
                documents.append(contentsOf: results[index]!.0)
                errors.append(contentsOf: results[index]!.1)
                if let body = results[index]!.2 { fresh[digests[index]] = body }
                results[index] = nil
            }
        }
        var seen: [ResourceKey: Int] = [:]  // the first document's index: copying locations costs at 100,000
        seen.reserveCapacity(documents.count)
        for index in documents.indices {
            let key = documents[index].key
            if let first = seen[key] {
                errors.append(ManifestError(
                    location: documents[index].location(of: [.key("metadata"), .key("name")]),
                    resource: key.description,
                    message: "defined twice in this set (first at \(documents[first].location))",
                    hint: "remove one of them or give it another name"
                ))
            } else {
                seen[key] = index
            }
        }
        if !errors.isEmpty { throw ManifestErrors(errors) }
        if !fresh.isEmpty { cache?.cacheManifests(fresh) }
        return documents
    }

    /// Parses one source into documents and the problems found in it.
    public static func parse(_ source: ManifestSource, defaultProject: String? = nil) -> ([ManifestDocument], [ManifestError]) {
        let file = source.name
        if let offset = source.data.firstIndex(of: 0) {
            return ([], [ManifestError(location: SourceLocation(file: file, line: 1, column: 1), message: "this is not a text file (NUL byte at offset \(offset - source.data.startIndex))", hint: "manifests are YAML or JSON text")])
        }
        guard let text = String(validating: source.data, as: UTF8.self) else {
            return ([], [ManifestError(location: SourceLocation(file: file, line: 1, column: 1), message: "this is not UTF-8 text", hint: "manifests are YAML or JSON text in UTF-8")])
        }
        var (documents, errors) = parseInPieces(text, file: file, defaultProject: defaultProject)
            ?? { let parsed = parseDocuments(text, file: file, defaultProject: defaultProject); return (parsed.documents, parsed.errors) }()
        if documents.isEmpty && errors.isEmpty {
            errors.append(ManifestError(location: SourceLocation(file: file, line: 1, column: 1), message: "no resources found (the file is empty)", hint: "add a resource or remove the file"))
        }
        return (documents, errors)
    }

    /// Parses and decodes the documents of a YAML stream, in order. `failed`: the stream did not
    /// parse to its end (a syntax error, reported in `errors`; the documents before it are kept).
    static func parseDocuments(_ text: String, file: String, defaultProject: String?) -> (documents: [ManifestDocument], errors: [ManifestError], failed: Bool) {
        var documents: [ManifestDocument] = []
        var errors: [ManifestError] = []
        do {
            let parser = try Parser(yaml: text, resolver: .basic)  // the decoder reads scalars itself; regex tag resolution is most of the parse time
            while let root = try parser.nextRoot() {
                if root.isNull { continue }  // an empty document between `---` lines
                switch decodeDocument(root, file: file, defaultProject: defaultProject) {
                case .success(let document): documents.append(document)
                case .failure(let failure): errors += failure.errors
                }
            }
        } catch let error as YamlError {
            errors.append(syntaxError(error, file: file))
            return (documents, errors, true)
        } catch {
            errors.append(ManifestError(location: SourceLocation(file: file, line: 1, column: 1), message: "cannot be parsed: \(error)"))
            return (documents, errors, true)
        }
        return (documents, errors, false)
    }

    /// Files at least this big are cut into pieces parsed on every core; smaller ones are parsed
    /// whole (a set of many files is already parsed a file per core).
    static let piecewiseParseMinimum = 256 * 1024

    /// Parses a big stream in pieces, in parallel: the same documents and errors as one parse, or
    /// nil when it is small, cannot be cut safely, or a piece does not parse (then the whole file
    /// is parsed in one go, so a syntax error reads exactly as it always did).
    ///
    /// A line that starts with `---` is always a document start (YAML forbids it inside any
    /// content), and documents share nothing without directives, so cutting before such lines
    /// changes no document. Each piece is preceded by as many empty lines as came before it, so
    /// every line and column the parser reports is the file's own.
    static func parseInPieces(_ text: String, file: String, defaultProject: String?) -> ([ManifestDocument], [ManifestError])? {
        let pieces = documentPieces(text)
        guard pieces.count > 1 else { return nil }
        let results = Mutex([(documents: [ManifestDocument], errors: [ManifestError], failed: Bool)?](repeating: nil, count: pieces.count))
        DispatchQueue.concurrentPerform(iterations: pieces.count) { index in
            let parsed = parseDocuments(pieces[index], file: file, defaultProject: defaultProject)
            results.withLock { $0[index] = parsed }
        }
        return results.withLock { results -> ([ManifestDocument], [ManifestError])? in
            guard !results.contains(where: { $0!.failed }) else { return nil }
            return (results.flatMap { $0!.documents }, results.flatMap { $0!.errors })
        }
    }

    /// Cuts a stream before some `---` lines into pieces of similar size, each padded with the
    /// empty lines before it; one piece (or none) when the stream is small or has directives
    /// (`%YAML`, `%TAG`) or line breaks other than `\n` (which the padding would count differently).
    static func documentPieces(_ text: String) -> [String] {
        var text = text
        return text.withUTF8 { bytes -> [String] in
            let count = bytes.count
            guard count >= piecewiseParseMinimum else { return [] }
            let pieceCount = max(2, min(ProcessInfo.processInfo.activeProcessorCount * 2, count / (128 * 1024)))
            let pieceSize = count / pieceCount
            var starts: [(offset: Int, line: Int)] = [(0, 1)]
            var line = 1
            var atLineStart = true
            var index = 0
            while index < count {
                let byte = bytes[index]
                if atLineStart {
                    if byte == UInt8(ascii: "%") { return [] }
                    if byte == UInt8(ascii: "-"), index + 2 < count, bytes[index + 1] == UInt8(ascii: "-"), bytes[index + 2] == UInt8(ascii: "-"),
                        index + 3 == count || [UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n")].contains(bytes[index + 3]),
                        index - starts[starts.count - 1].offset >= pieceSize, starts.count < pieceCount
                    {
                        starts.append((index, line))
                    }
                }
                switch byte {
                case UInt8(ascii: "\n"):
                    line += 1
                    atLineStart = true
                case UInt8(ascii: "\r"):
                    return []
                case 0xC2 where index + 1 < count && bytes[index + 1] == 0x85:  // NEL
                    return []
                case 0xE2 where index + 2 < count && bytes[index + 1] == 0x80 && (bytes[index + 2] == 0xA8 || bytes[index + 2] == 0xA9):  // LS, PS
                    return []
                default:
                    atLineStart = false
                }
                index += 1
            }
            return starts.indices.map { piece in
                let end = piece + 1 < starts.count ? starts[piece + 1].offset : count
                return String(repeating: "\n", count: starts[piece].line - 1)
                    + String(decoding: UnsafeBufferPointer(rebasing: bytes[starts[piece].offset..<end]), as: UTF8.self)
            }
        }
    }

    private static func syntaxError(_ error: YamlError, file: String) -> ManifestError {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let where_ = context.map { " (\($0.text) at line \($0.mark.line))" } ?? ""
            return ManifestError(location: SourceLocation(file: file, line: mark.line, column: mark.column), message: "YAML syntax error: \(problem)\(where_)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.sorted().map { "\"\($0)\"" }.joined(separator: ", ")
            return ManifestError(location: SourceLocation(file: file, line: context.mark.line, column: context.mark.column), message: "duplicate key \(keys) in this mapping", hint: "each key may appear once; remove or merge the repeats")
        case .reader(let problem, let offset, _, _):
            return ManifestError(location: SourceLocation(file: file, line: 1, column: 1), message: "cannot read the text: \(problem)\(offset.map { " at byte \($0)" } ?? "")")
        default:
            return ManifestError(location: SourceLocation(file: file, line: 1, column: 1), message: "YAML error: \(error)")
        }
    }

    private static let envelopeKeys = ["apiVersion", "kind", "metadata", "spec", "status"]

    /// Turns one document's tree into a resource, or every problem found in it.
    static func decodeDocument(_ root: Node, file: String, defaultProject: String?) -> Result<ManifestDocument, ManifestErrors> {
        let start = SourceLocation(file: file, line: root.mark?.line ?? 1, column: root.mark?.column ?? 1)
        func at(_ mark: Mark?) -> SourceLocation {
            mark.map { SourceLocation(file: file, line: $0.line, column: $0.column) } ?? start
        }
        func failure(_ issue: DecodeIssue, resource: String? = nil) -> ManifestError {
            ManifestError(location: at(issue.mark), resource: resource, path: renderPath(issue.path), message: issue.message, hint: issue.hint)
        }
        guard case .mapping(let mapping) = root else {
            return .failure(ManifestErrors([ManifestError(location: start, message: "expected a resource (a mapping with apiVersion, kind, metadata and spec), got \(root.describedKind)")]))
        }
        var errors: [ManifestError] = []
        var fields: [String: Node] = [:]
        for (keyNode, value) in mapping {
            let key = keyNode.scalar?.string ?? ""
            if !envelopeKeys.contains(key) {
                errors.append(ManifestError(location: at(keyNode.mark), path: key, message: "unknown field \"\(key)\"", hint: Suggestion.hint(for: key, in: envelopeKeys) ?? "a resource has apiVersion, kind, metadata and spec"))
            } else if fields[key] != nil {
                errors.append(ManifestError(location: at(keyNode.mark), path: key, message: "duplicate key \"\(key)\""))
            }
            fields[key] = value
        }
        for key in ["apiVersion", "kind", "metadata", "spec"] where fields[key] == nil {
            errors.append(ManifestError(location: start, path: key, message: "missing required field \"\(key)\""))
        }
        if let apiVersion = fields["apiVersion"], apiVersion.scalar?.string != Resource.apiVersion {
            errors.append(ManifestError(location: at(apiVersion.mark), path: "apiVersion", message: "expected \"\(Resource.apiVersion)\", got \(apiVersion.describedKind)", hint: "write apiVersion: \(Resource.apiVersion)"))
        }
        var kind: Kind?
        if let kindNode = fields["kind"] {
            let name = kindNode.scalar?.string ?? ""
            kind = Kind(rawValue: name)
            if kind == nil {
                let exact = Kind.allCases.first { $0.rawValue.lowercased() == name.lowercased() }
                errors.append(ManifestError(location: at(kindNode.mark), path: "kind", message: "unknown kind \(kindNode.describedKind)", hint: exact.map { "did you mean \"\($0.rawValue)\"?" } ?? Suggestion.hint(for: name, in: Kind.allCases.map(\.rawValue)) ?? "kinds are \(Kind.allCases.map(\.rawValue).joined(separator: ", "))"))
            }
        }
        guard let kind, let metadataNode = fields["metadata"], let specNode = fields["spec"], errors.isEmpty else {
            return .failure(ManifestErrors(errors))
        }
        let session = DecodeSession()
        let metadata: ManifestMetadata
        switch decodeMetadata(metadataNode) {
        case .success(let decoded): metadata = decoded
        case .failure(let issue): return .failure(ManifestErrors(errors + [failure(issue)]))
        }
        // Decoding ends here; the rules every writer shares are admission's (name, scope, validation, defaults).
        let (project, identityProblems) = Admission.identity(kind: kind, name: metadata.name, project: metadata.project, defaultProject: defaultProject)
        for problem in identityProblems + Admission.labels(metadata.labels ?? [:]) + Admission.annotations(kind: kind, metadata.annotations ?? [:]) {
            errors.append(ManifestError(location: at(root.locate(problem.path) ?? metadataNode.mark), path: renderPath(problem.path), message: problem.message, hint: problem.hint, code: problem.code))
        }
        let key = ResourceKey(kind: kind, project: project, name: metadata.name)
        let label = key.description
        var body: any SpecBody
        do {
            body = try decodeSpec(ResourceSpec.bodyType(for: kind), NodeDecoder(node: specNode, path: [.key("spec")], session: session))
        } catch let issue as DecodeIssue {
            return .failure(ManifestErrors(errors + [failure(issue, resource: label)]))
        } catch {
            return .failure(ManifestErrors(errors + [ManifestError(location: at(specNode.mark), resource: label, path: "spec", message: "\(error)")]))
        }
        errors += session.unknownFieldIssues().map { failure($0, resource: label) }
        for issue in Admission.validate(body) {
            errors.append(ManifestError(location: at(root.locate(issue.path)), resource: label, path: renderPath(issue.path), message: issue.message, hint: issue.hint, code: issue.code))
        }
        guard errors.isEmpty else { return .failure(ManifestErrors(errors)) }
        Admission.applyDefaults(&body)
        let meta = ObjectMeta(name: metadata.name, project: project, labels: metadata.labels ?? [:], annotations: metadata.annotations ?? [:])
        do {
            return .success(try ManifestDocument(resource: Resource(metadata: meta, spec: ResourceSpec(body)), location: start, root: root))
        } catch {
            return .failure(ManifestErrors([ManifestError(location: start, resource: label, message: "cannot be encoded: \(error)")]))
        }
    }

    private static let metadataKeys = ["name", "project", "labels", "annotations", "id", "generation", "applySet", "manager", "creationTimestamp", "deletionTimestamp"]

    /// Reads `metadata` by hand: it is in every document, and a generic decode of its maps is slow.
    private static func decodeMetadata(_ node: Node) -> Result<ManifestMetadata, DecodeIssue> {
        let path: [PathElement] = [.key("metadata")]
        guard case .mapping(let mapping) = node else {
            return .failure(DecodeIssue(path: path, message: "expected a mapping, got \(node.describedKind)", mark: node.mark))
        }
        var name: String?
        var metadata = ManifestMetadata(name: "")
        var seen = Set<String>()
        for (keyNode, value) in mapping {
            let key = keyNode.scalar?.string ?? ""
            let at = path + [.key(key)]
            if !seen.insert(key).inserted { return .failure(DecodeIssue(path: at, message: "duplicate key \"\(key)\"", mark: keyNode.mark)) }
            func string() -> Result<String, DecodeIssue> {
                guard case .scalar(let scalar) = value, !value.isNull else {
                    return .failure(DecodeIssue(path: at, message: "expected a string, got \(value.describedKind)", mark: value.mark))
                }
                return .success(scalar.string)
            }
            func map() -> Result<[String: String], DecodeIssue> {
                if value.isNull { return .success([:]) }
                guard case .mapping(let entries) = value else {
                    return .failure(DecodeIssue(path: at, message: "expected a mapping of strings, got \(value.describedKind)", mark: value.mark))
                }
                var result: [String: String] = [:]
                for (entryKey, entryValue) in entries {
                    guard case .scalar(let k) = entryKey, case .scalar(let v) = entryValue, !entryValue.isNull else {
                        return .failure(DecodeIssue(path: at + [.key(entryKey.scalar?.string ?? "?")], message: "expected a string value, got \(entryValue.describedKind)", hint: "quote it", mark: entryValue.mark))
                    }
                    result[k.string] = v.string
                }
                return .success(result)
            }
            switch key {
            case "name":
                switch string() {
                case .success(let value): name = value
                case .failure(let issue): return .failure(issue)
                }
            case "project":
                if value.isNull { continue }
                switch string() {
                case .success(let value): metadata.project = value
                case .failure(let issue): return .failure(issue)
                }
            case "labels", "annotations":
                switch map() {
                case .success(let value): if key == "labels" { metadata.labels = value } else { metadata.annotations = value }
                case .failure(let issue): return .failure(issue)
                }
            case _ where metadataKeys.contains(key):
                continue  // written by Stratus; ignored on input
            default:
                return .failure(DecodeIssue(path: at, message: "unknown field \"\(key)\"", hint: Suggestion.hint(for: key, in: metadataKeys) ?? "metadata has name, project, labels and annotations", mark: keyNode.mark))
            }
        }
        guard let name else { return .failure(DecodeIssue(path: path, message: "missing required field \"name\"", mark: node.mark)) }
        metadata.name = name
        return .success(metadata)
    }

    private static func decodeSpec<T: SpecBody>(_ type: T.Type, _ decoder: NodeDecoder) throws -> any SpecBody {
        try decoder.decodeValue(type)
    }
}
