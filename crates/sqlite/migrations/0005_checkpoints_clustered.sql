-- Checkpoints clustered on their key (WITHOUT ROWID): a checkpoint write touches one b-tree
-- instead of three (rowid table, primary-key index, created_at index), which is most of the
-- WAL written per superstep in `sync` durability. Expiry groups by thread within a tenant,
-- which the primary key serves; the created_at index had no other reader.
CREATE TABLE checkpoints_new (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    thread_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    parent_id   TEXT,
    step        INTEGER NOT NULL,
    body        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, thread_id, id)
) STRICT, WITHOUT ROWID;
INSERT INTO checkpoints_new SELECT tenant_id, thread_id, id, parent_id, step, body, created_at FROM checkpoints;
DROP TABLE checkpoints;
ALTER TABLE checkpoints_new RENAME TO checkpoints;

CREATE TABLE checkpoint_writes_new (
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    thread_id      TEXT NOT NULL,
    checkpoint_id  TEXT NOT NULL,
    task           TEXT NOT NULL,
    value          TEXT NOT NULL,
    PRIMARY KEY (tenant_id, thread_id, checkpoint_id, task)
) STRICT, WITHOUT ROWID;
INSERT INTO checkpoint_writes_new SELECT tenant_id, thread_id, checkpoint_id, task, value FROM checkpoint_writes;
DROP TABLE checkpoint_writes;
ALTER TABLE checkpoint_writes_new RENAME TO checkpoint_writes;
