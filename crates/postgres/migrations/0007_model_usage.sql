-- Model calls: tokens as the provider counted them and their cost in nano-dollars (NULL:
-- the model had no price), per tenant, task and model.
CREATE TABLE model_usage (
    tenant_id          uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    at                 timestamptz NOT NULL,
    seq                bigint GENERATED ALWAYS AS IDENTITY,
    task_id            uuid,
    provider           text NOT NULL,
    model              text NOT NULL,
    prompt_tokens      bigint NOT NULL,
    completion_tokens  bigint NOT NULL,
    cost_nanousd       bigint,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX model_usage_at ON model_usage(tenant_id, at);

GRANT SELECT, INSERT ON model_usage TO morningai_tenant;
ALTER TABLE model_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE model_usage FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON model_usage TO morningai_tenant
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
DO $$
BEGIN
    EXECUTE format('CREATE POLICY platform_path ON model_usage TO %I USING (true) WITH CHECK (true)', current_user);
END
$$;
