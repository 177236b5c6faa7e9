-- LangGraph's long-term store: JSON documents under a namespace (`label.label.`) and a key,
-- with an optional embedding and time to live.
CREATE TABLE kv_items (
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    namespace    text COLLATE "C" NOT NULL,
    key          text NOT NULL,
    value        jsonb NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    ttl_minutes  double precision,
    expires_at   timestamptz,
    embedding    real[],
    PRIMARY KEY (tenant_id, namespace, key)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON kv_items TO morningai_tenant;
ALTER TABLE kv_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE kv_items FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON kv_items TO morningai_tenant
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
DO $$
BEGIN
    EXECUTE format('CREATE POLICY platform_path ON kv_items TO %I USING (true) WITH CHECK (true)', current_user);
END
$$;
