-- The embedded job queue, stored task events and cron schedules.

-- Jobs live in the same file as tasks, so creating a task and enqueueing its job is one
-- transaction. A job's id is its task's id (standalone jobs, e.g. in benchmarks, have
-- none). FIFO within a priority follows the rowid, which only grows.
CREATE TABLE jobs (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL,
    kind              TEXT NOT NULL,
    priority          INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 9),
    payload           TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('ready', 'running', 'dead')),
    run_at            INTEGER NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL,
    timeout_ms        INTEGER NOT NULL,
    dedupe_key        TEXT,
    lease_token       TEXT,
    lease_deadline    INTEGER,
    cancel_requested  INTEGER NOT NULL DEFAULT 0,
    last_error        TEXT,
    failed_at         INTEGER,
    enqueued_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX jobs_running ON jobs(lease_deadline) WHERE state = 'running';
CREATE INDEX jobs_tenant ON jobs(tenant_id, state);
-- Per-tenant ready heads, so dequeue never scans a saturated tenant's backlog.
CREATE INDEX jobs_tenant_ready ON jobs(tenant_id, priority DESC) WHERE state = 'ready';
-- A dedupe key is held while its job is pending or running.
CREATE UNIQUE INDEX jobs_dedupe ON jobs(tenant_id, dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state <> 'dead';

-- Every task event, so SSE clients can replay what they missed (Last-Event-ID).
CREATE TABLE task_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    task_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    data       TEXT NOT NULL,
    at         INTEGER NOT NULL
) STRICT;
CREATE INDEX task_events_task ON task_events(tenant_id, task_id, id);
CREATE INDEX task_events_tenant ON task_events(tenant_id, id);

CREATE TABLE schedules (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    cron         TEXT NOT NULL,
    timezone     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    input        TEXT NOT NULL,
    priority     INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 9),
    next_run_at  INTEGER NOT NULL,
    created_by   TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX schedules_due ON schedules(next_run_at);
CREATE INDEX schedules_tenant ON schedules(tenant_id, id);

-- Finds unfinished tasks for the reconciler without scanning finished ones.
CREATE INDEX tasks_unfinished ON tasks(updated_at) WHERE status IN ('queued', 'running', 'retrying');
