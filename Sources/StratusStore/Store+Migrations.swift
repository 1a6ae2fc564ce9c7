import GRDB

extension Store {
    /// Named, append-only migrations. Never edit one that has shipped; add another.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-resources-events") { db in
            try db.execute(sql: """
                CREATE TABLE resource (
                    id INTEGER PRIMARY KEY,
                    kind TEXT NOT NULL,
                    project TEXT NOT NULL DEFAULT '',
                    name TEXT NOT NULL,
                    ec2Id TEXT UNIQUE,
                    spec TEXT NOT NULL,
                    specHash TEXT NOT NULL,
                    generation INTEGER NOT NULL,
                    labels TEXT NOT NULL DEFAULT '{}',
                    annotations TEXT NOT NULL DEFAULT '{}',
                    applySet TEXT,
                    manager TEXT NOT NULL,
                    createdAt TEXT NOT NULL,
                    updatedAt TEXT NOT NULL,
                    deletionTimestamp TEXT,
                    status TEXT,
                    UNIQUE (kind, project, name)
                );
                CREATE INDEX resource_applySet ON resource(applySet);
                CREATE TABLE event (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    time TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    project TEXT NOT NULL,
                    name TEXT NOT NULL,
                    type TEXT NOT NULL,
                    reason TEXT NOT NULL,
                    message TEXT NOT NULL,
                    generation INTEGER
                );
                CREATE INDEX event_object ON event(kind, project, name);
                CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                """)
        }
        migrator.registerMigration("v2-allocations-cursors") { db in
            try db.execute(sql: """
                CREATE TABLE allocation (
                    pool TEXT NOT NULL,
                    value TEXT NOT NULL,
                    ownerKind TEXT NOT NULL,
                    ownerProject TEXT NOT NULL,
                    ownerName TEXT NOT NULL,
                    createdAt TEXT NOT NULL,
                    PRIMARY KEY (pool, value)
                );
                CREATE INDEX allocation_owner ON allocation(ownerKind, ownerProject, ownerName);
                CREATE TABLE cursor (name TEXT PRIMARY KEY, seq INTEGER NOT NULL);
                """)
        }
        migrator.registerMigration("v3-manifest-cache") { db in
            try db.execute(sql: "CREATE TABLE manifestCache (digest TEXT PRIMARY KEY, body TEXT NOT NULL, createdAt TEXT NOT NULL)")
        }
        migrator.registerMigration("v4-credentials") { db in
            // One access key per user (project '') and optionally per membership; the secret is AES-GCM sealed.
            try db.execute(sql: """
                CREATE TABLE credential (
                    accessKey TEXT PRIMARY KEY,
                    user TEXT NOT NULL,
                    project TEXT NOT NULL DEFAULT '',
                    sealedSecret BLOB NOT NULL,
                    createdAt TEXT NOT NULL,
                    rotatedAt TEXT,
                    UNIQUE (user, project)
                );
                """)
        }
        migrator.registerMigration("v5-instance-type-index") { db in
            // Quota checks count a project's live instances per type on every RunInstances; with the
            // expression indexed, SQLite counts from the index instead of parsing every spec.
            try db.execute(sql: """
                CREATE INDEX resource_instance_type ON resource(kind, project, deletionTimestamp, json_extract(spec, '$.instanceType'));
                """)
        }
        return migrator
    }
}
