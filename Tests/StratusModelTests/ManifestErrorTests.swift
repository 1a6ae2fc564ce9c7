import Foundation
import StratusTestSupport
import Testing

@testable import StratusModel

/// Bad inputs and exactly where and how they are reported.
@Suite struct ManifestErrorTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var text: String
        var line: Int
        var column: Int
        var path: String?
        var message: String
        var hint: String?
        var testDescription: String { name }
    }

    static let header = "apiVersion: stratus/v1\n"

    static let cases: [Case] = [
        Case(
            name: "wrong type", text: header + "kind: InstanceType\nmetadata: {name: t1}\nspec:\n  memoryMB: lots\n  vcpus: 1\n  diskGB: 1\n",
            line: 5, column: 13, path: "spec.memoryMB", message: "expected an integer, got \"lots\""
        ),
        Case(
            name: "quoted number", text: header + "kind: InstanceType\nmetadata: {name: t1}\nspec: {memoryMB: \"512\", vcpus: 1, diskGB: 1}\n",
            line: 4, column: 18, path: "spec.memoryMB", message: "expected an integer, got the string \"512\"", hint: "remove the quotes"
        ),
        Case(
            name: "unknown field", text: header + "kind: Image\nmetadata: {name: i, project: p}\nspec:\n  source: /x.qcow2\n  fromat: raw\n",
            line: 6, column: 3, path: "spec.fromat", message: "unknown field \"fromat\"", hint: "did you mean \"format\"?"
        ),
        Case(
            name: "unknown kind", text: header + "kind: Instanse\nmetadata: {name: a}\nspec: {}\n",
            line: 2, column: 7, path: "kind", message: "unknown kind \"Instanse\"", hint: "did you mean \"Instance\"?"
        ),
        Case(
            name: "bad CIDR", text: header + "kind: Network\nmetadata: {name: n, project: p}\nspec:\n  cidr: 10.0.0.1/24\n",
            line: 5, column: 9, path: "spec.cidr", message: "the address has host bits set, got \"10.0.0.1/24\"", hint: "did you mean 10.0.0.0/24?"
        ),
        Case(
            name: "not a CIDR", text: header + "kind: Network\nmetadata: {name: n, project: p}\nspec: {cidr: 10.0.300.0/24}\n",
            line: 4, column: 14, path: "spec.cidr", message: "expected a CIDR like 10.0.0.0/24 (the address part is not IPv4), got \"10.0.300.0/24\""
        ),
        Case(
            name: "enum value", text: header + "kind: Instance\nmetadata: {name: a, project: p}\nspec: {image: i, instanceType: t, powerState: runing}\n",
            line: 4, column: 47, path: "spec.powerState", message: "expected one of running, stopped, got \"runing\"", hint: "did you mean \"running\"?"
        ),
        Case(
            name: "port out of range", text: header + "kind: SecurityGroup\nmetadata: {name: g, project: p}\nspec:\n  ingress:\n  - protocol: tcp\n    fromPort: 80\n    toPort: 70000\n",
            line: 8, column: 13, path: "spec.ingress[0].toPort", message: "must be between 0 and 65535, got 70000"
        ),
        Case(
            name: "invalid name", text: header + "kind: Volume\nmetadata:\n  name: Data_1\n  project: p\nspec: {sizeGB: 1}\n",
            line: 4, column: 9, path: "metadata.name", message: "\"Data_1\" is not a valid name: upper-case letters are not allowed (a DNS label: lower-case letters, digits and '-')"
        ),
        Case(
            name: "missing project", text: header + "kind: Volume\nmetadata: {name: v}\nspec: {sizeGB: 1}\n",
            line: 3, column: 11, path: "metadata.project", message: "missing required field \"project\" (Volume is project-scoped)", hint: "add metadata.project or pass --project"
        ),
        Case(
            name: "project on a cluster kind", text: header + "kind: User\nmetadata: {name: bob, project: p}\nspec: {}\n",
            line: 3, column: 32, path: "metadata.project", message: "User is cluster-scoped and belongs to no project, got \"p\"", hint: "remove metadata.project"
        ),
        Case(
            name: "YAML syntax error", text: header + "kind: User\nmetadata: {name: bob\nspec: {}\n",
            line: 4, column: 5, path: nil, message: "YAML syntax error: did not find expected ',' or '}' (while parsing a flow mapping at line 3)"
        ),
        Case(name: "empty file", text: "", line: 1, column: 1, path: nil, message: "no resources found (the file is empty)", hint: "add a resource or remove the file"),
        Case(
            name: "a list instead of a resource", text: "- a\n- b\n",
            line: 1, column: 1, path: nil, message: "expected a resource (a mapping with apiVersion, kind, metadata and spec), got a list"
        ),
        Case(
            name: "duplicate key", text: header + "kind: User\nmetadata: {name: bob}\nspec:\n  email: a@b.c\n  email: c@d.e\n",
            line: 5, column: 3, path: nil, message: "duplicate key \"email\" in this mapping"
        ),
        Case(
            name: "wrong apiVersion", text: "apiVersion: v1\nkind: User\nmetadata: {name: bob}\nspec: {}\n",
            line: 1, column: 13, path: "apiVersion", message: "expected \"stratus/v1\", got \"v1\"", hint: "write apiVersion: stratus/v1"
        ),
        Case(
            name: "misspelt required field", text: header + "kind: Volume\nmetadata: {name: v, project: p}\nspec:\n  sizeGb: 5\n",
            line: 5, column: 3, path: "spec.sizeGb", message: "unknown field \"sizeGb\" (and required field \"sizeGB\" is missing)", hint: "did you mean \"sizeGB\"?"
        ),
        Case(
            name: "boolean spelt yes", text: header + "kind: Image\nmetadata: {name: i, project: p}\nspec: {source: /a, public: yes}\n",
            line: 4, column: 28, path: "spec.public", message: "expected true or false, got \"yes\"", hint: "write true"
        ),
    ]

    @Test("a bad manifest is reported at its file, line, column and field path", arguments: cases)
    func reportsPosition(_ bad: Case) throws {
        let (documents, errors) = ManifestLoader.parse(ManifestSource(name: "bad.yaml", data: Data(bad.text.utf8)))
        #expect(documents.isEmpty)
        let error = try #require(errors.first, "expected an error for \(bad.name)")
        #expect(error.location == SourceLocation(file: "bad.yaml", line: bad.line, column: bad.column), "\(error)")
        #expect(error.path == bad.path, "\(error)")
        #expect(error.message == bad.message, "\(error)")
        if let hint = bad.hint { #expect(error.hint == hint, "\(error)") }
    }

    @Test("binary garbage is refused as not text, without a crash")
    func binaryGarbage() {
        var bytes = [UInt8](repeating: 0, count: 256)
        for index in bytes.indices { bytes[index] = UInt8((index * 7919 + 13) % 256) }
        let (documents, errors) = ManifestLoader.parse(ManifestSource(name: "garbage.bin", data: Data(bytes)))
        #expect(documents.isEmpty)
        #expect(errors.count == 1)
        #expect(errors[0].message.hasPrefix("this is not a text file"))
        let invalidUTF8 = ManifestLoader.parse(ManifestSource(name: "latin1.yaml", data: Data([0x6B, 0x3A, 0x20, 0xE9, 0x0A])))
        #expect(invalidUTF8.1.first?.message == "this is not UTF-8 text")
    }

    @Test("random and mutated bytes never crash the loader, and every error it gives is pinned inside the input", arguments: [1, 2, 3, 20261201])
    func fuzz(seed: UInt64) {
        var generator = SplitMix64(seed: seed)
        let valid = Array("apiVersion: stratus/v1\nkind: Instance\nmetadata: {name: x, project: p}\nspec: {image: debian, instanceType: m1.tiny}\n".utf8)
        let alphabet = Array("apiVersion: stratus/v1\nkind: Instance\nmetadata: {name: x, project: p}\nspec: [{}]\"'-&*!|>%@`#,?\t ".utf8) + [0x00, 0xC3, 0xFF]
        var rejected = 0
        var accepted = 0
        for round in 0..<400 {
            var bytes: [UInt8]
            if round.isMultiple(of: 2) {
                bytes = (0..<Int.random(in: 0..<200, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
            } else {
                bytes = valid  // a valid document with a few bytes changed, to reach past the syntax into decoding and validation
                for _ in 0..<Int.random(in: 1...3, using: &generator) { bytes[Int.random(in: 0..<bytes.count, using: &generator)] = alphabet.randomElement(using: &generator)! }
            }
            let source = ManifestSource(name: "fuzz.yaml", data: Data(bytes))
            let (documents, errors) = ManifestLoader.parse(source)
            let lines = bytes.count { $0 == UInt8(ascii: "\n") } + 1
            for error in errors {
                #expect(!error.message.isEmpty, "seed \(seed) round \(round)")
                if let location = error.location {
                    #expect(location.file == "fuzz.yaml" && (1...lines + 1).contains(location.line) && location.column >= 1, "seed \(seed) round \(round): \(error)")
                }
            }
            #expect(ManifestLoader.parse(source).1 == errors, "parsing is deterministic (seed \(seed) round \(round))")
            if errors.isEmpty { accepted += documents.count > 0 ? 1 : 0 } else { rejected += 1 }
        }
        #expect(rejected > 100, "the inputs reach the error paths (seed \(seed): \(rejected) rejected)")
        #expect(accepted > 0, "some mutations stay valid documents (seed \(seed))")
    }

    @Test("a big file parsed in pieces gives the documents, positions and errors of one parse", arguments: ["", "bad", "syntax", "directive"])
    func piecewiseParse(variant: String) throws {
        var documents: [String] = []
        for index in 0..<3000 {
            var spec = "spec:\n  description: group \(index)\n  ingress:\n  - {protocol: tcp, fromPort: \(index), toPort: \(index)}\n"
            if variant == "bad" && index % 1000 == 999 { spec = spec.replacingOccurrences(of: "fromPort: \(index)", with: "fromPort: 99999") + "  colour: red\n" }
            if variant == "syntax" && index == 2500 { spec = spec.replacingOccurrences(of: "toPort: \(index)}", with: "toPort: \(index)") }
            documents.append("apiVersion: stratus/v1\nkind: SecurityGroup\nmetadata: {name: sg-\(index), project: p}\n" + spec)
        }
        let text = (variant == "directive" ? "%YAML 1.1\n---\n" : "") + documents.joined(separator: "---\n")
        #expect(text.utf8.count >= ManifestLoader.piecewiseParseMinimum)
        let pieceCount = ManifestLoader.documentPieces(text).count
        #expect(variant == "directive" ? pieceCount == 0 : pieceCount > 1, "directives apply to later documents: such a file is never cut")
        let (pieces, piecesErrors) = ManifestLoader.parse(ManifestSource(name: "big.yaml", data: Data(text.utf8)))
        let whole = ManifestLoader.parseDocuments(text, file: "big.yaml", defaultProject: nil)
        #expect(pieces.count == whole.documents.count)
        for (piece, one) in zip(pieces, whole.documents) {
            #expect(piece.key == one.key && piece.location == one.location && piece.specJSON == one.specJSON)
            #expect(piece.references == one.references && piece.fieldLocations.encoded == one.fieldLocations.encoded)
        }
        #expect(piecesErrors.map(\.description) == whole.errors.map(\.description))
        #expect(variant != "bad" || piecesErrors.count >= 6)
        #expect(variant != "syntax" || (piecesErrors.count == 1 && piecesErrors[0].message.hasPrefix("YAML syntax error")))
    }

    @Test("a resource defined twice in one set is an error naming both places")
    func duplicateInSet() throws {
        let text = "apiVersion: stratus/v1\nkind: User\nmetadata: {name: bob}\nspec: {}\n"
        let sources = [ManifestSource(name: "a.yaml", data: Data(text.utf8)), ManifestSource(name: "b.yaml", data: Data(text.utf8))]
        let error = try #require(throws: ManifestErrors.self) { try ManifestLoader.load(sources) }
        #expect(error.errors.count == 1)
        #expect(error.errors[0].description == "b.yaml:3:18: User bob: defined twice in this set (first at a.yaml:1:1); remove one of them or give it another name")
    }

    @Test("every problem in a set is reported, not just the first")
    func allErrors() throws {
        let text = """
            apiVersion: stratus/v1
            kind: Volume
            metadata: {name: a, project: p}
            spec: {sizeGB: 0}
            ---
            apiVersion: stratus/v1
            kind: Volume
            metadata: {name: b, project: p}
            spec: {sizeGB: 1, colour: red}
            """
        let error = try #require(throws: ManifestErrors.self) { try ManifestLoader.load([ManifestSource(name: "v.yaml", data: Data(text.utf8))]) }
        #expect(error.errors.map(\.description) == [
            "v.yaml:4:16: Volume p/a: spec.sizeGB: must be between 1 and 16384 GB, got 0",
            "v.yaml:9:19: Volume p/b: spec.colour: unknown field \"colour\"; known fields: attachment, availabilityZone, sizeGB, snapshot",
        ])
    }
}

@Suite struct JSONManifestTests {
    @Test("JSON manifests load like YAML, and their errors carry positions too")
    func jsonInput() throws {
        let good = #"{"apiVersion": "stratus/v1", "kind": "Volume", "metadata": {"name": "v", "project": "p"}, "spec": {"sizeGB": 2}}"#
        let documents = try ManifestLoader.load([ManifestSource(name: "v.json", data: Data(good.utf8))])
        #expect(documents.map(\.key) == [ResourceKey(kind: .volume, project: "p", name: "v")])
        let bad = "{\n  \"apiVersion\": \"stratus/v1\",\n  \"kind\": \"Volume\",\n  \"metadata\": {\"name\": \"v\", \"project\": \"p\"},\n  \"spec\": {\"sizeGB\": \"2\"}\n}\n"
        let (_, errors) = ManifestLoader.parse(ManifestSource(name: "v.json", data: Data(bad.utf8)))
        #expect(errors.map(\.description) == ["v.json:5:22: Volume p/v: spec.sizeGB: expected an integer, got the string \"2\"; remove the quotes"])
    }
}
