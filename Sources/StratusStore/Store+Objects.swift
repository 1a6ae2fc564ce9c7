import Foundation
import GRDB
import StratusModel

/// A bucket of the object store: owned by a project.
public struct BucketRecord: Sendable, Equatable {
    public var name: String
    public var project: String
    public var createdAt: String
    /// Anyone may read its objects without signing.
    public var isPublic: Bool
}

/// An object's metadata; its bytes are the file `file` under the object store's data directory.
public struct ObjectRecord: Sendable, Equatable {
    public var bucket: String
    public var key: String
    public var file: String
    public var size: Int64
    public var etag: String
    public var lastModified: String
    /// The headers stored with the object: Content-Type, Content-Encoding, Cache-Control, …, x-amz-meta-*.
    public var headers: [String: String]
    /// Checksums by algorithm (`CRC32`, `SHA256`, …), base64, as the client sent them.
    public var checksums: [String: String]
    /// The MD5 of the whole object (hex): its ETag for a single PUT, not for a multipart one.
    /// What a node verifies an image it fetches against.
    public var md5: String?
    /// The object's tags (S3 object tagging: at most 10, unique keys).
    public var tags: [String: String]
    /// A small object's bytes, kept in the store (its `file` is then empty): no file to create and
    /// sync, and the store's commit makes it durable.
    public var data: Data?

    public init(
        bucket: String, key: String, file: String, size: Int64, etag: String, lastModified: String, headers: [String: String], checksums: [String: String],
        md5: String? = nil, tags: [String: String] = [:], data: Data? = nil
    ) {
        self.data = data
        self.bucket = bucket
        self.key = key
        self.file = file
        self.size = size
        self.etag = etag
        self.lastModified = lastModified
        self.headers = headers
        self.checksums = checksums
        self.md5 = md5
        self.tags = tags
    }

    /// Where its bytes are under a data directory (`DATA/objects/data/<xx>/<uuid>`).
    public func path(dataDirectory: String) -> String { Self.path(file, dataDirectory: dataDirectory) }

    public static func path(_ file: String, dataDirectory: String) -> String {
        (dataDirectory as NSString).appendingPathComponent("objects/data/" + file)
    }
}

/// A write to the object store refused because it would take the project past `quotas.objectGigabytes`.
/// The bucket of a write was deleted while the body arrived: nothing is recorded.
public struct ObjectBucketGone: Error, Sendable, CustomStringConvertible {
    public let bucket: String
    public var description: String { "bucket \(bucket) was deleted while the object was uploaded" }
}

public struct ObjectQuotaExceeded: Error, Sendable, CustomStringConvertible {
    public let project: String
    /// The quota, GiB.
    public let gigabytes: Int64
    /// Bytes the project holds now, and bytes the write would add.
    public let used: Int64
    public let adding: Int64

    public var message: String {
        "project \(project)'s quota allows \(gigabytes) GiB of objects; it holds \(used) bytes and this write would add \(adding) "
            + "(raise spec.quotas.objectGigabytes of Project \(project), or delete objects or abort uploads)"
    }

    public var description: String { message }
}

/// A multipart upload in progress.
public struct UploadRecord: Sendable, Equatable {
    public var id: String
    public var bucket: String
    public var key: String
    public var initiated: String
    public var headers: [String: String]
    /// The tags the object gets when the upload completes (`x-amz-tagging` at its creation).
    public var tags: [String: String]

    public init(id: String, bucket: String, key: String, initiated: String, headers: [String: String], tags: [String: String] = [:]) {
        self.id = id
        self.bucket = bucket
        self.key = key
        self.initiated = initiated
        self.headers = headers
        self.tags = tags
    }
}

/// One uploaded part.
public struct PartRecord: Sendable, Equatable {
    public var number: Int
    public var file: String
    public var size: Int64
    public var etag: String
    public var lastModified: String

    public init(number: Int, file: String, size: Int64, etag: String, lastModified: String) {
        self.number = number
        self.file = file
        self.size = size
        self.etag = etag
        self.lastModified = lastModified
    }
}

extension Store {
    static func json(_ value: [String: String]) -> String {
        String(decoding: (try? JSONEncoder().encode(value)) ?? Data("{}".utf8), as: UTF8.self)
    }

    static func dictionary(_ text: String) -> [String: String] {
        if text == "{}" { return [:] }
        // JSONSerialization: a GET decodes two of these, and JSONDecoder costs several times more.
        return ((try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: String]) ?? [:]
    }

    // MARK: - Buckets

    public func buckets(project: String?) throws -> [BucketRecord] {
        try reading { db in
            let rows = try project.map { try Row.fetchAll(db, sql: "SELECT name, project, createdAt, public FROM bucket WHERE project = ? ORDER BY name", arguments: [$0]) }
                ?? Row.fetchAll(db, sql: "SELECT name, project, createdAt, public FROM bucket ORDER BY name")
            return rows.map { BucketRecord(name: $0[0], project: $0[1], createdAt: $0[2], isPublic: $0[3]) }
        }
    }

    public func bucket(_ name: String) throws -> BucketRecord? {
        try reading { db in
            try Row.fetchOne(db, sql: "SELECT name, project, createdAt, public FROM bucket WHERE name = ?", arguments: [name])
                .map { BucketRecord(name: $0[0], project: $0[1], createdAt: $0[2], isPublic: $0[3]) }
        }
    }

    /// A bucket's tag set: nil when the bucket has none (or does not exist).
    public func bucketTags(_ name: String) throws -> [String: String]? {
        try reading { db in
            try String.fetchOne(db, sql: "SELECT tags FROM bucket WHERE name = ?", arguments: [name]).map(Self.dictionary)
        }
    }

    /// Replaces a bucket's tag set (nil removes it); false when the bucket does not exist.
    public func setBucketTags(_ name: String, _ tags: [String: String]?) throws -> Bool {
        try writing { db in
            try db.execute(sql: "UPDATE bucket SET tags = ? WHERE name = ?", arguments: [tags.map(Self.json), name])
            return db.changesCount > 0
        }
    }

    /// Creates a bucket; returns the existing one (unchanged) when the name is taken.
    public func createBucket(_ name: String, project: String) throws -> (bucket: BucketRecord, created: Bool) {
        try writing { db in
            if let row = try Row.fetchOne(db, sql: "SELECT name, project, createdAt, public FROM bucket WHERE name = ?", arguments: [name]) {
                return (BucketRecord(name: row[0], project: row[1], createdAt: row[2], isPublic: row[3]), false)
            }
            let now = Timestamp.string(Date())
            try db.execute(sql: "INSERT INTO bucket (name, project, createdAt, public) VALUES (?, ?, ?, 0)", arguments: [name, project, now])
            return (BucketRecord(name: name, project: project, createdAt: now, isPublic: false), true)
        }
    }

    public enum BucketDeletion: Sendable { case deleted, notFound, notEmpty }

    public func deleteBucket(_ name: String) throws -> BucketDeletion {
        try writing { db in
            guard try Int.fetchOne(db, sql: "SELECT 1 FROM bucket WHERE name = ?", arguments: [name]) != nil else { return .notFound }
            if try Int.fetchOne(db, sql: "SELECT 1 FROM object WHERE bucket = ? LIMIT 1", arguments: [name]) != nil { return .notEmpty }
            if try Int.fetchOne(db, sql: "SELECT 1 FROM upload WHERE bucket = ? LIMIT 1", arguments: [name]) != nil { return .notEmpty }
            try db.execute(sql: "DELETE FROM bucket WHERE name = ?", arguments: [name])
            return .deleted
        }
    }

    public func setBucketPublic(_ name: String, _ isPublic: Bool) throws {
        try writing { db in try db.execute(sql: "UPDATE bucket SET public = ? WHERE name = ?", arguments: [isPublic, name]) }
    }

    // MARK: - Objects

    /// Keys are stored as their UTF-8 bytes (a BLOB): SQLite's text binding stops at a NUL, and
    /// S3 keys may hold one. BLOBs compare bytewise, which is S3's order.
    static func keyValue(_ key: String) -> Data { Data(key.utf8) }

    static func key(_ value: DatabaseValue) -> String {
        if let data = Data.fromDatabaseValue(value) { return String(decoding: data, as: UTF8.self) }
        return String.fromDatabaseValue(value) ?? ""
    }

    static func object(_ row: Row) -> ObjectRecord {
        ObjectRecord(bucket: row[0], key: key(row[1]), file: row[2], size: row[3], etag: row[4], lastModified: row[5], headers: dictionary(row[6]), checksums: dictionary(row[7]), md5: row[8], tags: dictionary(row[9]), data: row[10])
    }

    static let objectColumns = "bucket, key, file, size, etag, lastModified, headers, checksums, md5, tags"

    /// An object's row with its inline bytes, if it has some (`objectData`: apart, so listings
    /// scan metadata only).
    static let selectObject = """
        SELECT o.bucket, o.key, o.file, o.size, o.etag, o.lastModified, o.headers, o.checksums, o.md5, o.tags, d.data
        FROM object o LEFT JOIN objectData d ON d.bucket = o.bucket AND d.key = o.key
        """

    /// Records an object's row and its inline bytes (or removes bytes a file now replaces).
    static func writeObject(_ db: Database, _ object: ObjectRecord) throws {
        try db.cachedStatement(sql: upsertObject).execute(arguments: objectArguments(object))
        if let data = object.data {
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO objectData (bucket, key, data) VALUES (?, ?, ?)").execute(arguments: [object.bucket, keyValue(object.key), data])
        } else {
            try db.cachedStatement(sql: "DELETE FROM objectData WHERE bucket = ? AND key = ?").execute(arguments: [object.bucket, keyValue(object.key)])
        }
    }

    /// Writes an object's row, replacing one of the same key with an UPDATE (which the usage
    /// triggers see; REPLACE's implicit delete fires none).
    static let upsertObject = """
        INSERT INTO object (\(objectColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (bucket, key) DO UPDATE SET file = excluded.file, size = excluded.size, etag = excluded.etag, lastModified = excluded.lastModified,
            headers = excluded.headers, checksums = excluded.checksums, md5 = excluded.md5, tags = excluded.tags
        """

    /// The values of `objectColumns` for `object`, in order.
    static func objectArguments(_ object: ObjectRecord) -> StatementArguments {
        [object.bucket, keyValue(object.key), object.file, object.size, object.etag, object.lastModified, json(object.headers), json(object.checksums), object.md5, json(object.tags)]
    }

    public func object(bucket: String, key: String) throws -> ObjectRecord? {
        try reading { db in
            try Row.fetchOne(db.cachedStatement(sql: Self.selectObject + " WHERE o.bucket = ? AND o.key = ?"), arguments: [bucket, Self.keyValue(key)]).map(Self.object)
        }
    }

    /// A bucket and one of its objects, read together (a GET needs both).
    public func bucketAndObject(bucket: String, key: String) throws -> (bucket: BucketRecord?, object: ObjectRecord?) {
        try reading { db in
            let found = try Row.fetchOne(db.cachedStatement(sql: "SELECT name, project, createdAt, public FROM bucket WHERE name = ?"), arguments: [bucket])
                .map { BucketRecord(name: $0[0], project: $0[1], createdAt: $0[2], isPublic: $0[3]) }
            guard found != nil else { return (nil, nil) }
            let object = try Row.fetchOne(db.cachedStatement(sql: Self.selectObject + " WHERE o.bucket = ? AND o.key = ?"), arguments: [bucket, Self.keyValue(key)]).map(Self.object)
            return (found, object)
        }
    }

    /// What a listing shows of an object: no headers or checksums decoded.
    public struct ListedObject: Sendable {
        public var key: String
        public var size: Int64
        public var etag: String
        public var lastModified: String
    }

    /// As `objects(bucket:prefix:start:inclusive:limit:)`, with only what a listing shows.
    public func listing(bucket: String, prefix: String, start: String?, inclusive: Bool = false, limit: Int) throws -> [ListedObject] {
        try reading { db in
            let (sql, arguments) = Self.keyRange("SELECT key, size, etag, lastModified FROM object WHERE bucket = ?", column: "key", bucket: bucket, prefix: prefix, start: start, inclusive: inclusive, limit: limit)
            return try Row.fetchAll(db.cachedStatement(sql: sql), arguments: arguments).map {
                ListedObject(key: Self.key($0[0]), size: $0[1], etag: $0[2], lastModified: $0[3])
            }
        }
    }

    /// Records an object (replacing one of the same key) and returns the file it replaced, which
    /// the caller removes; nil when `condition` refuses the write (the object's current ETag, or
    /// nil when there is none, decides).
    public func putObject(_ object: ObjectRecord, condition: (@Sendable (String?) -> Bool)? = nil) throws -> (written: Bool, replaced: String?) {
        try writing { db in
            let current = try Row.fetchOne(db.cachedStatement(sql: "SELECT file, etag, size FROM object WHERE bucket = ? AND key = ?"), arguments: [object.bucket, Self.keyValue(object.key)])
            if let condition, !condition(current?[1]) { return (false, nil) }
            try Self.checkObjectQuota(db, bucket: object.bucket, adding: object.size - (current?[2] ?? 0))
            try Self.writeObject(db, object)
            return (true, current?[0])
        }
    }

    /// Records several objects in one transaction, one commit for all (group commit): each as
    /// `putObject` records it, in order, inside a savepoint of its own, so one refused (its
    /// condition, the quota) changes nothing and the others still commit.
    public func putObjects(_ batch: [(object: ObjectRecord, condition: (@Sendable (String?) -> Bool)?)]) throws -> [Result<(written: Bool, replaced: String?), any Error>] {
        try writing { db in
            var results: [Result<(written: Bool, replaced: String?), any Error>] = []
            results.reserveCapacity(batch.count)
            for (object, condition) in batch {
                var outcome: (written: Bool, replaced: String?) = (false, nil)
                do {
                    try db.inSavepoint {
                        let current = try Row.fetchOne(db.cachedStatement(sql: "SELECT file, etag, size FROM object WHERE bucket = ? AND key = ?"), arguments: [object.bucket, Self.keyValue(object.key)])
                        if let condition, !condition(current?[1]) { return .commit }
                        try Self.checkObjectQuota(db, bucket: object.bucket, adding: object.size - (current?[2] ?? 0))
                        try Self.writeObject(db, object)
                        outcome = (true, current?[0])
                        return .commit
                    }
                    results.append(.success(outcome))
                } catch {
                    results.append(.failure(error))
                }
            }
            return results
        }
    }

    /// Replaces an object's tags; false when there is no such object.
    public func setObjectTags(bucket: String, key: String, _ tags: [String: String]) throws -> Bool {
        try writing { db in
            try db.cachedStatement(sql: "UPDATE object SET tags = ? WHERE bucket = ? AND key = ?").execute(arguments: [Self.json(tags), bucket, Self.keyValue(key)])
            return db.changesCount > 0
        }
    }

    /// Removes an object's record; returns its file.
    public func deleteObject(bucket: String, key: String) throws -> String? {
        try writing { db in
            let file = try String.fetchOne(db.cachedStatement(sql: "SELECT file FROM object WHERE bucket = ? AND key = ?"), arguments: [bucket, Self.keyValue(key)])
            try db.cachedStatement(sql: "DELETE FROM object WHERE bucket = ? AND key = ?").execute(arguments: [bucket, Self.keyValue(key)])
            try db.cachedStatement(sql: "DELETE FROM objectData WHERE bucket = ? AND key = ?").execute(arguments: [bucket, Self.keyValue(key)])
            return file
        }
    }

    /// `select` (which names the bucket with `?`) narrowed to the keys that start with `prefix`,
    /// from `start` on, in key order, at most `limit`: both bounds of the prefix are index
    /// ranges, so a listing reads only the keys it returns.
    static func keyRange(_ select: String, column: String, bucket: String, prefix: String, start: String?, inclusive: Bool, limit: Int) -> (String, StatementArguments) {
        var sql = select
        var arguments: [any DatabaseValueConvertible] = [bucket]
        if !prefix.isEmpty {
            sql += " AND \(column) >= ?"
            arguments.append(keyValue(prefix))
            if let end = successor(of: prefix) {
                sql += " AND \(column) < ?"
                arguments.append(keyValue(end))
            }
        }
        if let start {
            sql += inclusive ? " AND \(column) >= ?" : " AND \(column) > ?"
            arguments.append(keyValue(start))
        }
        sql += " ORDER BY \(column) LIMIT ?"
        arguments.append(limit)
        return (sql, StatementArguments(arguments))
    }

    /// The least string greater than every string that starts with `prefix` (its last scalar
    /// incremented; UTF-8 byte order is scalar order), or nil when there is none.
    public static func successor(of prefix: String) -> String? {
        var scalars = Array(prefix.unicodeScalars)
        while let last = scalars.popLast() {
            var next = last.value + 1
            if next == 0xD800 { next = 0xE000 }
            if let scalar = Unicode.Scalar(next) {
                scalars.append(scalar)
                var result = ""
                result.unicodeScalars.append(contentsOf: scalars)
                return result
            }
        }
        return nil
    }

    /// Every file an object or a part refers to (a restart removes the others).
    public func objectFiles() throws -> Set<String> {
        try reading { db in
            Set(try String.fetchAll(db, sql: "SELECT file FROM object UNION SELECT file FROM part"))
        }
    }

    // MARK: - Quota

    /// Bytes a project's buckets hold: objects and the parts of uploads in progress.
    public func objectUsage(project: String) throws -> Int64 {
        try reading { db in try Int64.fetchOne(db, sql: "SELECT bytes FROM objectUsage WHERE project = ?", arguments: [project]) ?? 0 }
    }

    /// Before a large body is read: refuses a write of `bytes` declared bytes to `key` (or to part
    /// `part` of `upload`) that cannot fit the project's object quota, so a client is told at once
    /// instead of after sending gigabytes. The write's own transaction checks again.
    public func checkObjectQuota(bucket: String, key: String, upload: String? = nil, part: Int = 0, bytes: Int64) throws {
        try reading { db in
            let current: Int64?
            if let upload {
                current = try Int64.fetchOne(db, sql: "SELECT size FROM part WHERE upload = ? AND number = ?", arguments: [upload, part])
            } else {
                current = try Int64.fetchOne(db.cachedStatement(sql: "SELECT size FROM object WHERE bucket = ? AND key = ?"), arguments: [bucket, Self.keyValue(key)])
            }
            try Self.checkObjectQuota(db, bucket: bucket, adding: bytes - (current ?? 0))
        }
    }

    /// Refuses a write that adds `adding` bytes to a bucket when its project's
    /// `quotas.objectGigabytes` would be passed. Runs in the write's transaction, so concurrent
    /// uploads cannot together pass the quota; a write that adds nothing (or frees room) always passes.
    /// Checks, inside a write's transaction, that the bucket still exists (it may have been
    /// deleted while the body arrived, and its name taken by another project) and that `adding`
    /// bytes fit the project's object quota.
    static func checkObjectQuota(_ db: Database, bucket: String, adding: Int64) throws {
        guard let project = try String.fetchOne(db.cachedStatement(sql: "SELECT project FROM bucket WHERE name = ?"), arguments: [bucket]) else {
            throw ObjectBucketGone(bucket: bucket)
        }
        guard adding > 0 else { return }
        let limit = try Int.fetchOne(db.cachedStatement(sql: """
            SELECT json_extract(spec, '$.quotas.objectGigabytes') FROM resource WHERE kind = 'Project' AND project = '' AND name = ?
            """), arguments: [project])
        var quotas = Quotas(objectGigabytes: limit)
        quotas.applyDefaults()  // a project not (or no longer) stored gets the default
        let gigabytes = Int64(quotas.objectGigabytes ?? 0)
        let used = try Int64.fetchOne(db.cachedStatement(sql: "SELECT bytes FROM objectUsage WHERE project = ?"), arguments: [project]) ?? 0
        if used + adding > gigabytes << 30 { throw ObjectQuotaExceeded(project: project, gigabytes: gigabytes, used: used, adding: adding) }
    }

    // MARK: - Multipart uploads

    public func createUpload(_ upload: UploadRecord) throws {
        try writing { db in
            try db.execute(sql: "INSERT INTO upload (id, bucket, key, initiated, headers, tags) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [upload.id, upload.bucket, Self.keyValue(upload.key), upload.initiated, Self.json(upload.headers), Self.json(upload.tags)])
        }
    }

    public func upload(_ id: String) throws -> UploadRecord? {
        try reading { db in
            try Row.fetchOne(db, sql: "SELECT id, bucket, key, initiated, headers, tags FROM upload WHERE id = ?", arguments: [id])
                .map { UploadRecord(id: $0[0], bucket: $0[1], key: Self.key($0[2]), initiated: $0[3], headers: Self.dictionary($0[4]), tags: Self.dictionary($0[5])) }
        }
    }

    public func uploads(bucket: String) throws -> [UploadRecord] {
        try reading { db in
            try Row.fetchAll(db, sql: "SELECT id, bucket, key, initiated, headers, tags FROM upload WHERE bucket = ? ORDER BY key, initiated", arguments: [bucket])
                .map { UploadRecord(id: $0[0], bucket: $0[1], key: Self.key($0[2]), initiated: $0[3], headers: Self.dictionary($0[4]), tags: Self.dictionary($0[5])) }
        }
    }

    /// Records a part (replacing one of the same number); returns the replaced part's file.
    /// Nil when the upload no longer exists (then `part.file` is the caller's to remove).
    public func putPart(upload: String, _ part: PartRecord) throws -> (recorded: Bool, replaced: String?) {
        try writing { db in
            guard try Int.fetchOne(db, sql: "SELECT 1 FROM upload WHERE id = ?", arguments: [upload]) != nil else { return (false, nil) }
            let old = try Row.fetchOne(db, sql: "SELECT file, size FROM part WHERE upload = ? AND number = ?", arguments: [upload, part.number])
            let bucket = try String.fetchOne(db, sql: "SELECT bucket FROM upload WHERE id = ?", arguments: [upload]) ?? ""
            try Self.checkObjectQuota(db, bucket: bucket, adding: part.size - (old?[1] ?? 0))
            try db.execute(sql: """
                INSERT INTO part (upload, number, file, size, etag, lastModified) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (upload, number) DO UPDATE SET file = excluded.file, size = excluded.size, etag = excluded.etag, lastModified = excluded.lastModified
                """, arguments: [upload, part.number, part.file, part.size, part.etag, part.lastModified])
            return (true, old?[0])
        }
    }

    public func parts(upload: String) throws -> [PartRecord] {
        try reading { db in
            try Row.fetchAll(db, sql: "SELECT number, file, size, etag, lastModified FROM part WHERE upload = ? ORDER BY number", arguments: [upload])
                .map { PartRecord(number: $0[0], file: $0[1], size: $0[2], etag: $0[3], lastModified: $0[4]) }
        }
    }

    /// Ends an upload (completed or aborted): its record and its parts' records go; returns the
    /// parts' files for the caller to remove. When `object` is given it is recorded in the same
    /// transaction (replacing one of the same key, whose file is returned too), if `condition` allows.
    public func finishUpload(_ id: String, object: ObjectRecord? = nil, condition: (@Sendable (String?) -> Bool)? = nil) throws -> (written: Bool, files: [String]) {
        try writing { db in
            var files = try String.fetchAll(db, sql: "SELECT file FROM part WHERE upload = ?", arguments: [id])
            if let object {
                let current = try Row.fetchOne(db, sql: "SELECT file, etag, size FROM object WHERE bucket = ? AND key = ?", arguments: [object.bucket, Self.keyValue(object.key)])
                if let condition, !condition(current?[1]) { return (false, []) }
                // The parts already count; the object takes their place (and the one it replaces').
                let parts = try Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(size), 0) FROM part WHERE upload = ?", arguments: [id]) ?? 0
                try Self.checkObjectQuota(db, bucket: object.bucket, adding: object.size - parts - (current?[2] ?? 0))
                if let old: String = current?[0] { files.append(old) }
                try Self.writeObject(db, object)
                files.removeAll { $0 == object.file }
            }
            try db.execute(sql: "DELETE FROM part WHERE upload = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM upload WHERE id = ?", arguments: [id])
            return (true, files)
        }
    }
}
