import Foundation
import Testing

/// Which module may import which, as Package.swift declares it (docs/ARCHITECTURE.md draws it).
@Suite struct ModuleBoundaryTests {
    /// Every target's direct dependencies on other targets of this package, read from Package.swift.
    static func targets() throws -> [String: Set<String>] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("Package.swift"), encoding: .utf8)
        var result: [String: Set<String>] = [:]
        let blocks = text.components(separatedBy: "name: \"").dropFirst()
        for block in blocks {
            guard let end = block.firstIndex(of: "\"") else { continue }
            let name = String(block[..<end])
            guard let dependencies = block.range(of: "dependencies: [") else { continue }
            let list = block[dependencies.upperBound...].prefix { $0 != "]" }
            let names = list.split(separator: ",").compactMap { item -> String? in
                let trimmed = item.trimmingCharacters(in: .whitespacesAndNewlines)
                guard trimmed.hasPrefix("\""), trimmed.hasSuffix("\"") else { return nil }
                return String(trimmed.dropFirst().dropLast())
            }
            result[name, default: []].formUnion(names)
        }
        return result
    }

    static func closure(of target: String, in targets: [String: Set<String>]) -> Set<String> {
        var seen: Set<String> = []
        var stack = [target]
        while let next = stack.popLast() {
            for dependency in targets[next] ?? [] where seen.insert(dependency).inserted { stack.append(dependency) }
        }
        return seen
    }

    @Test("StratusNode runs without the store: it depends on drivers and the model only")
    func nodeHasNoStore() throws {
        let targets = try Self.targets()
        let node = Self.closure(of: "StratusNode", in: targets)
        #expect(node.contains("StratusCompute"), "the parse found StratusNode's dependencies: \(node)")
        #expect(!node.contains("StratusStore") && !node.contains("StratusControl") && !node.contains("StratusServer"))
    }

    @Test("StratusTelemetry is a leaf beside the model: everything records into it, it imports no other Stratus module")
    func telemetryIsALeaf() throws {
        let targets = try Self.targets()
        let telemetry = Self.closure(of: "StratusTelemetry", in: targets).filter { $0.hasPrefix("Stratus") }
        #expect(telemetry == ["StratusModel"], "\(telemetry)")
        for recorder in ["StratusStore", "StratusControl", "StratusAPI", "StratusEC2", "StratusObjectStore"] {
            #expect(Self.closure(of: recorder, in: targets).contains("StratusTelemetry"), "\(recorder)")
        }
    }

    @Test("the node's kernel drivers (network, storage) never open the store")
    func driversHaveNoStore() throws {
        let targets = try Self.targets()
        for driver in ["StratusNetwork", "StratusStorage"] {
            let closure = Self.closure(of: driver, in: targets)
            #expect(closure.contains("StratusCompute"), "the parse found \(driver)'s dependencies: \(closure)")
            #expect(!closure.contains("StratusStore") && !closure.contains("StratusControl") && !closure.contains("StratusServer"), "\(driver): \(closure)")
        }
        #expect(Self.closure(of: "StratusControl", in: targets).isSuperset(of: ["StratusNetwork", "StratusStorage"]))
    }

    @Test("the API servers share StratusAccess, not the CLI's client module; only the assembly sees everything")
    func apisDoNotLinkTheClient() throws {
        let targets = try Self.targets()
        #expect(Self.closure(of: "StratusEC2", in: targets).contains("StratusAccess"))
        #expect(!Self.closure(of: "StratusEC2", in: targets).contains("StratusAPI"))
        let objectStore = Self.closure(of: "StratusObjectStore", in: targets)
        #expect(objectStore.contains("StratusAccess") && !objectStore.contains("StratusAPI") && !objectStore.contains("StratusEC2") && !objectStore.contains("StratusControl"), "\(objectStore)")
        #expect(!Self.closure(of: "StratusControl", in: targets).contains("StratusServer"))
        #expect(Self.closure(of: "StratusServer", in: targets).isSuperset(of: ["StratusNode", "StratusControl", "StratusEC2", "StratusAPI", "StratusObjectStore"]))
    }
}
