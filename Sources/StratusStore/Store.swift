import Foundation
import GRDB
import Logging
import Metrics
import StratusModel
import StratusTelemetry
import Synchronization

/// The desired and observed state of the cloud, in one SQLite database (WAL).
///
/// One `Store` owns the GRDB writer and the migrations. Every apply set commits in one
/// transaction; the `event` table is the append-only change feed the controller follows.
public final class Store: Sendable {
    let writer: any DatabaseWriter
    let logger: Logger
    let secrets: SecretBox
    /// Answers of `signer(accessKey:)`, valid while the identity version is unchanged.
    let signers = Mutex(SignerCache())
    /// A read-only connection of its own for the identity version every signed request checks:
    /// one autocommit SELECT, without a pooled reader's transaction and schema check, which
    /// cost ten times the query (nil for a store that is not a file).
    let identityProbe: DatabaseQueue?
    /// The histograms of read and write transactions, once `instrument` was called.
    let timers = Mutex<TransactionTimers?>(nil)

    struct TransactionTimers: Sendable {
        let read: Metrics.Timer
        let write: Metrics.Timer
    }

    /// Records the time of every transaction from now on in `telemetry`.
    public func instrument(_ telemetry: Telemetry) {
        let timers = TransactionTimers(
            read: Metrics.Timer(label: MetricName.storeTransactionDuration.name, dimensions: [("type", "read")], factory: telemetry.factory),
            write: Metrics.Timer(label: MetricName.storeTransactionDuration.name, dimensions: [("type", "write")], factory: telemetry.factory))
        self.timers.withLock { $0 = timers }
    }

    /// A write transaction of the writer, timed when the store is instrumented.
    func writing<T>(_ updates: (Database) throws -> T) throws -> T {
        guard let timer = timers.withLock({ $0?.write }) else { return try writer.write(updates) }
        let started = ContinuousClock.now
        defer { timer.recordInterval(since: started) }
        return try writer.write(updates)
    }

    /// A read transaction (a snapshot), timed when the store is instrumented.
    func reading<T>(_ value: (Database) throws -> T) throws -> T {
        guard let timer = timers.withLock({ $0?.read }) else { return try writer.read(value) }
        let started = ContinuousClock.now
        defer { timer.recordInterval(since: started) }
        return try writer.read(value)
    }

    /// Opens (creating if needed) the store in a data directory, as `DIR/stratus.sqlite`.
    ///
    /// On first creation the built-in catalog (`manifests/catalog.yaml`) is applied.
    public convenience init(dataDirectory: String, logger: Logger = Logger(label: "stratus.store")) throws {
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        // Opening migrates: two processes opening a new (or older) store at once, a `stratus
        // serve` and a CLI command, would both run the same migration and one would fail ("table
        // … already exists"). An exclusive lock on a file beside the database makes them take
        // turns; the second finds nothing left to do.
        let lock = open((dataDirectory as NSString).appendingPathComponent("stratus.sqlite.lock"), O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if lock >= 0 {
            while flock(lock, LOCK_EX) != 0 && errno == EINTR {}
        }
        defer {
            if lock >= 0 {
                flock(lock, LOCK_UN)
                close(lock)
            }
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        // No mmap_size: with constant writes SQLite unmaps the whole mapping at the start of
        // every read transaction after a commit (TLB shootdowns on every core), which cost more
        // than the page copies it saved (EC2 benchmark: 2.2-2.5 ms of CPU per Run+Terminate
        // pair with a 256 MiB map, 1.8-2.0 ms without; describing 10,000 instances the same).
        // Checkpoint every 10,000 WAL pages (~40 MB) rather than SQLite's 1,000: under churn the
        // same hot pages (the event feed's tail, index pages, usage counts) are rewritten many
        // times between checkpoints, and each checkpoint copies and syncs them once, in the
        // writer, blocking every other write (EC2 benchmark: 574/542 -> 606/614 pairs/s).
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA wal_autocheckpoint = 10000") }
        let path = (dataDirectory as NSString).appendingPathComponent("stratus.sqlite")
        // The database holds every spec and the sealed secrets: owner-only whatever the umask.
        // SQLite gives the -wal and -shm files the database file's mode, so the file is made first.
        if !FileManager.default.fileExists(atPath: path) {
            FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        let pool = try DatabasePool(path: path, configuration: configuration)
        for file in [path, path + "-wal", path + "-shm"] where FileManager.default.fileExists(atPath: file) {
            try? FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)  // files of older versions
        }
        if let mode = (try? FileManager.default.attributesOfItem(atPath: dataDirectory))?[.posixPermissions] as? Int, mode & 0o077 != 0 {
            logger.warning("the data directory is open to other local users; its files are kept owner-only, but close it too", metadata: [
                "stratus.dataDir": "\(dataDirectory)", "stratus.mode": "\(String(mode, radix: 8))", "stratus.fix": "chmod 700 \(dataDirectory)",
            ])
        }
        let secrets = try SecretBox(keyFile: (dataDirectory as NSString).appendingPathComponent("secret.key"))
        try self.init(writer: pool, logger: logger, secrets: secrets, identityProbe: pool.path)
    }

    /// Wraps an open database (a temporary `DatabaseQueue()` in tests), migrating it to the current schema.
    public convenience init(writer: any DatabaseWriter, logger: Logger = Logger(label: "stratus.store"), seedCatalog: Bool = true) throws {
        try self.init(writer: writer, logger: logger, secrets: SecretBox(), seedCatalog: seedCatalog)
    }

    init(writer: any DatabaseWriter, logger: Logger, secrets: SecretBox, seedCatalog: Bool = true, identityProbe path: String? = nil) throws {
        self.writer = writer
        self.logger = logger
        self.secrets = secrets
        try Self.migrator.migrate(writer)
        identityProbe = try path.map { path in
            var configuration = Configuration()
            configuration.readonly = true
            configuration.busyMode = .timeout(10)
            return try DatabaseQueue(path: path, configuration: configuration)
        }
        if seedCatalog { try seedCatalogOnce() }
    }

    /// Applies the built-in catalog the first time this database is opened.
    private func seedCatalogOnce() throws {
        let seeded = try reading { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'catalogSeeded'") }
        guard seeded == nil else { return }
        let documents = try ManifestLoader.load([BuiltinCatalog.source])
        _ = try apply(documents, options: ApplyOptions(applySet: BuiltinCatalog.applySet, manager: "catalog"), seed: true)
        logger.debug("applied the built-in catalog", metadata: ["stratus.resources": "\(documents.count)"])
    }

    /// The schema version names applied so far, oldest first.
    public func appliedMigrations() throws -> [String] {
        try reading { db in try Self.migrator.appliedMigrations(db) }
    }
}
