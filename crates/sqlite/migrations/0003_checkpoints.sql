-- Workflow checkpoints (one row per superstep; the body stores only what the step changed)
-- and the pending writes of tasks that finished inside a step that has not completed.
CREATE TABLE checkpoints (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    thread_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    parent_id   TEXT,
    step        INTEGER NOT NULL,
    body        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, thread_id, id)
) STRICT;
CREATE INDEX checkpoints_created ON checkpoints(tenant_id, created_at);

CREATE TABLE checkpoint_writes (
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    thread_id      TEXT NOT NULL,
    checkpoint_id  TEXT NOT NULL,
    task           TEXT NOT NULL,
    value          TEXT NOT NULL,
    PRIMARY KEY (tenant_id, thread_id, checkpoint_id, task)
) STRICT;
