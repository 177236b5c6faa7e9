-- Workflow checkpoints (one row per superstep; the body stores only what the step changed)
-- and the pending writes of tasks that finished inside a step that has not completed.
CREATE TABLE checkpoints (
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    thread_id   text NOT NULL,
    id          uuid NOT NULL,
    parent_id   uuid,
    step        bigint NOT NULL,
    body        jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, thread_id, id)
);
CREATE INDEX checkpoints_created ON checkpoints(tenant_id, created_at);

CREATE TABLE checkpoint_writes (
    tenant_id      uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    thread_id      text NOT NULL,
    checkpoint_id  uuid NOT NULL,
    task           text NOT NULL,
    value          jsonb NOT NULL,
    PRIMARY KEY (tenant_id, thread_id, checkpoint_id, task)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON checkpoints, checkpoint_writes TO morningai_tenant;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['checkpoints', 'checkpoint_writes']
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
