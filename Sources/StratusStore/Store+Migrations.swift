import Foundation
import GRDB
import StratusModel

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
        migrator.registerMigration("v6-instance-usage") { db in
            // Live instances per project and type, kept by triggers in the same transaction as the
            // write: a quota check reads a few rows instead of counting 10,000 index entries (the
            // v5 index is dropped with it). boto3 and awscli send a client token with every
            // RunInstances; the index finds earlier launches with it without reading every instance.
            try db.execute(sql: """
                DROP INDEX resource_instance_type;
                CREATE TABLE instanceUsage (
                    project TEXT NOT NULL,
                    instanceType TEXT NOT NULL,
                    count INTEGER NOT NULL,
                    PRIMARY KEY (project, instanceType)
                ) WITHOUT ROWID;
                INSERT INTO instanceUsage (project, instanceType, count)
                    SELECT project, COALESCE(json_extract(spec, '$.instanceType'), ''), COUNT(*) FROM resource
                    WHERE kind = 'Instance' AND deletionTimestamp IS NULL GROUP BY 1, 2;
                CREATE TRIGGER instanceUsageInsert AFTER INSERT ON resource
                WHEN NEW.kind = 'Instance' AND NEW.deletionTimestamp IS NULL BEGIN
                    INSERT INTO instanceUsage (project, instanceType, count)
                        VALUES (NEW.project, COALESCE(json_extract(NEW.spec, '$.instanceType'), ''), 1)
                        ON CONFLICT (project, instanceType) DO UPDATE SET count = count + 1;
                END;
                CREATE TRIGGER instanceUsageDelete AFTER DELETE ON resource
                WHEN OLD.kind = 'Instance' AND OLD.deletionTimestamp IS NULL BEGIN
                    UPDATE instanceUsage SET count = count - 1
                        WHERE project = OLD.project AND instanceType = COALESCE(json_extract(OLD.spec, '$.instanceType'), '');
                END;
                CREATE TRIGGER instanceUsageUpdate AFTER UPDATE OF spec, deletionTimestamp ON resource
                WHEN NEW.kind = 'Instance' BEGIN
                    UPDATE instanceUsage SET count = count - 1
                        WHERE OLD.deletionTimestamp IS NULL
                        AND project = OLD.project AND instanceType = COALESCE(json_extract(OLD.spec, '$.instanceType'), '');
                    INSERT INTO instanceUsage (project, instanceType, count)
                        SELECT NEW.project, COALESCE(json_extract(NEW.spec, '$.instanceType'), ''), 1 WHERE NEW.deletionTimestamp IS NULL
                        ON CONFLICT (project, instanceType) DO UPDATE SET count = count + 1;
                END;
                CREATE INDEX resource_client_token ON resource(project, json_extract(annotations, '$."ec2.stratus/client-token"'))
                    WHERE kind = 'Instance';
                """)
        }
        migrator.registerMigration("v7-identity-version") { db in
            // A counter every change to what authenticates a request bumps (credentials, users,
            // projects), whichever process writes it: `signer(accessKey:)` keeps its answers while
            // the counter stands still. Instance and status writes do not touch it.
            try db.execute(sql: """
                CREATE TABLE identityVersion (version INTEGER NOT NULL);
                INSERT INTO identityVersion (version) VALUES (0);
                CREATE TRIGGER identityCredentialInsert AFTER INSERT ON credential BEGIN
                    UPDATE identityVersion SET version = version + 1;
                END;
                CREATE TRIGGER identityCredentialUpdate AFTER UPDATE ON credential BEGIN
                    UPDATE identityVersion SET version = version + 1;
                END;
                CREATE TRIGGER identityCredentialDelete AFTER DELETE ON credential BEGIN
                    UPDATE identityVersion SET version = version + 1;
                END;
                CREATE TRIGGER identityResourceInsert AFTER INSERT ON resource WHEN NEW.kind IN ('User', 'Project') BEGIN
                    UPDATE identityVersion SET version = version + 1;
                END;
                CREATE TRIGGER identityResourceUpdate AFTER UPDATE OF spec, deletionTimestamp ON resource
                WHEN NEW.kind IN ('User', 'Project') BEGIN
                    UPDATE identityVersion SET version = version + 1;
                END;
                CREATE TRIGGER identityResourceDelete AFTER DELETE ON resource WHEN OLD.kind IN ('User', 'Project') BEGIN
                    UPDATE identityVersion SET version = version + 1;
                END;
                """)
        }
        migrator.registerMigration("v8-project-quota-defaults") { db in
            // Projects gained the ram and securityGroups quotas. Defaults are stored at admission
            // so they never show as changes; fill them into projects stored before, keeping the
            // generation (nobody changed the spec), so the next diff of the same files is clean.
            let rows = try Row.fetchAll(db, sql: "SELECT id, spec FROM resource WHERE kind = 'Project'")
            for row in rows {
                let id: Int64 = row[0]
                let json: String = row[1]
                let spec = try ResourceSpec.fromJSON(Data(json.utf8), kind: .project).defaulted()
                let text = try CanonicalJSON.string(spec.body)
                guard text != json else { continue }
                try db.execute(sql: "UPDATE resource SET spec = ?, specHash = ? WHERE id = ?", arguments: [text, CanonicalJSON.sha256(Data(text.utf8)), id])
            }
        }
        migrator.registerMigration("v9-default-security-groups") { db in
            // EC2-classic's default group, made with each project since; projects stored before get theirs.
            let now = Timestamp.string(Date())
            for project in try String.fetchAll(db, sql: "SELECT name FROM resource WHERE kind = 'Project' AND deletionTimestamp IS NULL") {
                try Store.insertDefaultGroup(db, project: project, now: now)
            }
        }
        migrator.registerMigration("v10-object-store") { db in
            // The S3 object store's metadata; the bytes are files under DATA/objects. Keys sort
            // as S3 sorts them (UTF-8 bytes: SQLite's BINARY collation).
            try db.execute(sql: """
                CREATE TABLE bucket (name TEXT PRIMARY KEY, project TEXT NOT NULL, createdAt TEXT NOT NULL, public INTEGER NOT NULL DEFAULT 0);
                CREATE INDEX bucket_project ON bucket(project);
                CREATE TABLE object (
                    bucket TEXT NOT NULL, key TEXT NOT NULL, file TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
                    lastModified TEXT NOT NULL, headers TEXT NOT NULL DEFAULT '{}', checksums TEXT NOT NULL DEFAULT '{}',
                    PRIMARY KEY (bucket, key)
                ) WITHOUT ROWID;
                CREATE TABLE upload (id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL, initiated TEXT NOT NULL, headers TEXT NOT NULL DEFAULT '{}');
                CREATE TABLE part (
                    upload TEXT NOT NULL, number INTEGER NOT NULL, file TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL, lastModified TEXT NOT NULL,
                    PRIMARY KEY (upload, number)
                ) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("v11-object-md5") { db in
            // The whole object's MD5 (a multipart ETag is not one): what a node checks an image it fetches against.
            try db.execute(sql: "ALTER TABLE object ADD COLUMN md5 TEXT")
        }
        migrator.registerMigration("v12-object-tags") { db in
            // S3 object tagging: an object's tags, and an upload's until it completes (JSON objects).
            try db.execute(sql: """
                ALTER TABLE object ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';
                ALTER TABLE upload ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';
                """)
        }
        migrator.registerMigration("v13-object-quota") { db in
            // quotas.objectGigabytes: bytes per project in objects and in the parts of uploads in
            // progress, kept by triggers in the write's own transaction (as v6 keeps instances), so
            // the check before each write reads one row. Object and part writes replace rows with
            // an upsert (an UPDATE), as REPLACE's implicit delete fires no trigger. Projects stored
            // before get the quota's default, as v8 did, so the same manifest stays unchanged.
            try db.execute(sql: """
                CREATE TABLE objectUsage (project TEXT PRIMARY KEY, bytes INTEGER NOT NULL) WITHOUT ROWID;
                INSERT INTO objectUsage (project, bytes)
                    SELECT bucket.project, SUM(sized.size) FROM (
                        SELECT bucket, size FROM object
                        UNION ALL SELECT upload.bucket, part.size FROM part JOIN upload ON upload.id = part.upload
                    ) AS sized JOIN bucket ON bucket.name = sized.bucket GROUP BY bucket.project;
                CREATE TRIGGER objectUsageInsert AFTER INSERT ON object BEGIN
                    INSERT INTO objectUsage (project, bytes) SELECT project, NEW.size FROM bucket WHERE name = NEW.bucket
                        ON CONFLICT (project) DO UPDATE SET bytes = bytes + excluded.bytes;
                END;
                CREATE TRIGGER objectUsageUpdate AFTER UPDATE OF size ON object BEGIN
                    UPDATE objectUsage SET bytes = bytes - OLD.size + NEW.size WHERE project = (SELECT project FROM bucket WHERE name = NEW.bucket);
                END;
                CREATE TRIGGER objectUsageDelete AFTER DELETE ON object BEGIN
                    UPDATE objectUsage SET bytes = bytes - OLD.size WHERE project = (SELECT project FROM bucket WHERE name = OLD.bucket);
                END;
                CREATE TRIGGER partUsageInsert AFTER INSERT ON part BEGIN
                    INSERT INTO objectUsage (project, bytes)
                        SELECT bucket.project, NEW.size FROM upload JOIN bucket ON bucket.name = upload.bucket WHERE upload.id = NEW.upload
                        ON CONFLICT (project) DO UPDATE SET bytes = bytes + excluded.bytes;
                END;
                CREATE TRIGGER partUsageUpdate AFTER UPDATE OF size ON part BEGIN
                    UPDATE objectUsage SET bytes = bytes - OLD.size + NEW.size
                        WHERE project = (SELECT bucket.project FROM upload JOIN bucket ON bucket.name = upload.bucket WHERE upload.id = NEW.upload);
                END;
                CREATE TRIGGER partUsageDelete AFTER DELETE ON part BEGIN
                    UPDATE objectUsage SET bytes = bytes - OLD.size
                        WHERE project = (SELECT bucket.project FROM upload JOIN bucket ON bucket.name = upload.bucket WHERE upload.id = OLD.upload);
                END;
                """)
            let rows = try Row.fetchAll(db, sql: "SELECT id, spec FROM resource WHERE kind = 'Project'")
            for row in rows {
                let id: Int64 = row[0]
                let json: String = row[1]
                let spec = try ResourceSpec.fromJSON(Data(json.utf8), kind: .project).defaulted()
                let text = try CanonicalJSON.string(spec.body)
                guard text != json else { continue }
                try db.execute(sql: "UPDATE resource SET spec = ?, specHash = ? WHERE id = ?", arguments: [text, CanonicalJSON.sha256(Data(text.utf8)), id])
            }
        }
        migrator.registerMigration("v14-inline-objects") { db in
            // Small objects' bytes in the store: a PUT of a few KB then costs one group commit, not a
            // file and its sync. A table of their own, so listings scan metadata only.
            try db.execute(sql: "CREATE TABLE objectData (bucket TEXT NOT NULL, key BLOB NOT NULL, data BLOB NOT NULL, PRIMARY KEY (bucket, key)) WITHOUT ROWID")
        }
        migrator.registerMigration("v15-bucket-tags") { db in
            // S3 bucket tagging: the tag set as JSON; NULL when the bucket has none (GetBucketTagging's NoSuchTagSet).
            try db.execute(sql: "ALTER TABLE bucket ADD COLUMN tags TEXT")
        }
        migrator.registerMigration("v16-desired-version") { db in
            // One counter of the desired state: bumped by every write of a resource's spec, labels,
            // annotations, apply set or tombstone (not its status), so a saved plan can tell
            // whether the store has moved since it was made (`ApplyOptions.expectVersion`).
            try db.execute(sql: """
                CREATE TABLE desiredVersion (version INTEGER NOT NULL);
                INSERT INTO desiredVersion (version) VALUES (0);
                CREATE TRIGGER desiredResourceInsert AFTER INSERT ON resource BEGIN
                    UPDATE desiredVersion SET version = version + 1;
                END;
                CREATE TRIGGER desiredResourceUpdate AFTER UPDATE OF spec, labels, annotations, applySet, deletionTimestamp ON resource BEGIN
                    UPDATE desiredVersion SET version = version + 1;
                END;
                CREATE TRIGGER desiredResourceDelete AFTER DELETE ON resource BEGIN
                    UPDATE desiredVersion SET version = version + 1;
                END;
                """)
        }
        migrator.registerMigration("v17-field-managers") { db in
            // Who set each field last (`describe`): JSON, field path → manager; "*" for every field
            // not named, as set when the resource was made. NULL for rows written before.
            try db.execute(sql: "ALTER TABLE resource ADD COLUMN fieldManagers TEXT")
        }
        migrator.registerMigration("v18-event-request-id") { db in
            // The API request that recorded each event, which the reconcile of the change logs.
            try db.execute(sql: "ALTER TABLE event ADD COLUMN requestId TEXT")
        }
        migrator.registerMigration("v19-status-summary") { db in
            // The status's phase, Ready status and Synced status:reason as plain columns, written
            // with the status: counting 10,000 resources by them (the census of /metrics and the
            // dashboard) is a GROUP BY of columns, not a parse of every status's JSON (5 ms, not 140).
            try db.execute(sql: """
                ALTER TABLE resource ADD COLUMN statusPhase TEXT;
                ALTER TABLE resource ADD COLUMN statusReady TEXT;
                ALTER TABLE resource ADD COLUMN statusSynced TEXT;
                UPDATE resource SET statusPhase = json_extract(status, '$.phase'),
                  statusReady = (SELECT json_extract(value, '$.status') FROM json_each(status, '$.conditions') WHERE json_extract(value, '$.type') = 'Ready'),
                  statusSynced = (SELECT json_extract(value, '$.status') || ':' || json_extract(value, '$.reason') FROM json_each(status, '$.conditions') WHERE json_extract(value, '$.type') = 'Synced')
                WHERE status IS NOT NULL;
                """)
        }
        return migrator
    }
}
