import Foundation
import GRDB
import StratusModel
import Testing

@testable import StratusStore

/// Counts lookups so a test can tell a cached load from a parse.
final class CountingCache: ManifestCache {
    let store: Store
    init(_ store: Store) { self.store = store }
    func cachedManifests(_ digests: [String]) -> [String: String] { store.cachedManifests(digests) }
    func cacheManifests(_ bodies: [String: String]) { store.cacheManifests(bodies) }
}

@Suite struct ManifestCacheTests {
    let sources = [ManifestSource(name: "acme.yaml", data: Data(acme(instances: 3).utf8))]

    @Test("a file loaded again comes from the cache with the same identity, hashes, references and positions")
    func sameResult() throws {
        let store = try makeStore()
        let fresh = try ManifestLoader.load(sources, cache: store, cacheSalt: "t")
        #expect(try store.writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM manifestCache") } == 1)
        let cached = try ManifestLoader.load(sources, cache: store, cacheSalt: "t")
        #expect(fresh.map(\.key) == cached.map(\.key))
        #expect(fresh.map(\.specHash) == cached.map(\.specHash))
        #expect(fresh.map(\.labelsJSON) == cached.map(\.labelsJSON))
        #expect(fresh.map(\.references) == cached.map(\.references).map { $0.map { reference in
            var restored = reference
            restored.path = fresh.flatMap(\.references).first { $0.target == reference.target && renderPath($0.path) == renderPath(reference.path) }?.path ?? []
            return restored
        } })
        for (a, b) in zip(fresh, cached) {
            #expect(try a.resource == b.resource)
            #expect(a.location == b.location)
            for reference in a.references { #expect(a.location(of: reference.path) == b.location(of: reference.path)) }
        }
    }

    @Test("a dangling reference is reported at the same position whether the file was parsed or cached")
    func errorsFromCache() throws {
        let store = try makeStore()
        let text = acme(instances: 1).replacingOccurrences(of: "spec: {image: debian,", with: "spec: {image: debain,")
        let source = [ManifestSource(name: "bad.yaml", data: Data(text.utf8))]
        func failure() throws -> [String] {
            let documents = try ManifestLoader.load(source, cache: store, cacheSalt: "t")
            let error = try #require(throws: ManifestErrors.self) { try store.plan(documents, options: ApplyOptions()) }
            return error.errors.map(\.description)
        }
        let first = try failure()
        let second = try failure()
        #expect(first == second)
        #expect(first == ["bad.yaml:19:15: Instance acme/web-0: spec.image: Image acme/debain does not exist (neither in these files nor in the store); did you mean \"debian\"?"])
    }

    @Test("another salt, project, name or content misses the cache; a damaged entry is parsed again")
    func misses() throws {
        let store = try makeStore()
        _ = try ManifestLoader.load(sources, cache: store, cacheSalt: "t")
        _ = try ManifestLoader.load(sources, cache: store, cacheSalt: "other")
        _ = try ManifestLoader.load(sources, defaultProject: "acme", cache: store, cacheSalt: "t")
        _ = try ManifestLoader.load([ManifestSource(name: "renamed.yaml", data: sources[0].data)], cache: store, cacheSalt: "t")
        #expect(try store.writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM manifestCache") } == 4)
        try store.writer.write { db in try db.execute(sql: "UPDATE manifestCache SET body = 'garbage'") }
        let reparsed = try ManifestLoader.load(sources, cache: store, cacheSalt: "t")
        #expect(reparsed.count == 6)
        #expect(try reparsed.last?.resource.spec == .instance(InstanceSpec(image: "debian", instanceType: "m1.small").defaultedBody()))
    }

    @Test("applying from the cache writes the same rows as applying parsed files")
    func applyFromCache() throws {
        let a = try makeStore()
        let b = try makeStore()
        try a.apply(try ManifestLoader.load(sources), options: ApplyOptions())
        _ = try ManifestLoader.load(sources, cache: b, cacheSalt: "t")
        try b.apply(try ManifestLoader.load(sources, cache: b, cacheSalt: "t"), options: ApplyOptions())
        let rowsA = try a.list().map { [$0.key.description, $0.specHash, String($0.generation)] }
        let rowsB = try b.list().map { [$0.key.description, $0.specHash, String($0.generation)] }
        #expect(rowsA == rowsB)
        #expect(try b.list(kind: .instance).first?.resource.spec == a.list(kind: .instance).first?.resource.spec)
    }
}

extension InstanceSpec {
    func defaultedBody() -> InstanceSpec {
        var copy = self
        copy.applyDefaults()
        return copy
    }
}
