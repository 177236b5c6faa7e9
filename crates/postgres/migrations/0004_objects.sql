-- Workflow documents: LangGraph-style threads and runs, and approvals, as JSON bodies.
CREATE TABLE objects (
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind        text NOT NULL,
    id          uuid NOT NULL,
    parent      uuid,
    status      text NOT NULL,
    body        jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, kind, id)
);
CREATE INDEX objects_parent ON objects(tenant_id, kind, parent, id);
CREATE INDEX objects_status ON objects(kind, status);

GRANT SELECT, INSERT, UPDATE, DELETE ON objects TO morningai_tenant;
ALTER TABLE objects ENABLE ROW LEVEL SECURITY;
ALTER TABLE objects FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON objects TO morningai_tenant
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
DO $$
BEGIN
    EXECUTE format('CREATE POLICY platform_path ON objects TO %I USING (true) WITH CHECK (true)', current_user);
END
$$;
