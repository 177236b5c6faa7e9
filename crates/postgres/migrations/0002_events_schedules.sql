-- Stored task events (SSE replay) and cron schedules. In distributed mode the job queue
-- is Redis; these tables keep what must survive a broker restart.

CREATE TABLE task_events (
    id         bigserial PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    task_id    uuid NOT NULL,
    kind       text NOT NULL,
    data       jsonb NOT NULL,
    at         timestamptz NOT NULL
);
CREATE INDEX task_events_task ON task_events(tenant_id, task_id, id);
CREATE INDEX task_events_tenant ON task_events(tenant_id, id);

CREATE TABLE schedules (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name         text NOT NULL,
    cron         text NOT NULL,
    timezone     text NOT NULL,
    kind         text NOT NULL,
    input        jsonb NOT NULL,
    priority     smallint NOT NULL CHECK (priority BETWEEN 0 AND 9),
    next_run_at  timestamptz NOT NULL,
    created_by   uuid REFERENCES users(id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL
);
CREATE INDEX schedules_due ON schedules(next_run_at);
CREATE INDEX schedules_tenant ON schedules(tenant_id, id);

CREATE INDEX tasks_unfinished ON tasks(updated_at) WHERE status IN ('queued', 'running', 'retrying');

GRANT SELECT, INSERT ON task_events TO morningai_tenant;
GRANT USAGE ON SEQUENCE task_events_id_seq TO morningai_tenant;
GRANT SELECT, INSERT, DELETE ON schedules TO morningai_tenant;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['task_events', 'schedules']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I TO morningai_tenant
                 USING (tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid)
                 WITH CHECK (tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid)', t);
        EXECUTE format(
            'CREATE POLICY platform_path ON %I TO %I USING (true) WITH CHECK (true)', t, current_user);
    END LOOP;
END
$$;
