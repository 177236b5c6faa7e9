-- A stand-in for the next release's migration, in every additive form the rollout rule
-- (migrate.rs, `breaking`) lets through. The tests apply it after this binary's migrations
-- and run this binary against the result, as happens between `morningai migrate` with a
-- new image and the last old process being replaced.
DO $$
DECLARE t text;
BEGIN
    -- A nullable column and a mandatory column with a default on every table.
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
        EXECUTE format('ALTER TABLE %I ADD COLUMN next_note text, '
                       'ADD COLUMN next_flag boolean NOT NULL DEFAULT false', t);
    END LOOP;
END $$;

-- New indexes, one of them unique on a new column.
CREATE INDEX tasks_next_note ON tasks (tenant_id, next_note);
CREATE INDEX task_events_next_flag ON task_events (next_flag) WHERE next_flag;
ALTER TABLE tasks ADD COLUMN next_ref uuid UNIQUE;

-- A new tenant-scoped table under the same row-level security.
CREATE TABLE next_webhooks (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url        text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE next_webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE next_webhooks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON next_webhooks TO morningai_tenant
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE, DELETE ON next_webhooks TO morningai_tenant;

-- Recorded as applied: this binary must start on a database newer than itself.
INSERT INTO morningai_migrations (version)
SELECT max(version) + 1 FROM morningai_migrations;
