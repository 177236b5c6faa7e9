-- Model calls: tokens as the provider counted them and their cost in nano-dollars (NULL:
-- the model had no price), per tenant, task and model.
CREATE TABLE model_usage (
    tenant_id          TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    at                 INTEGER NOT NULL,
    seq                INTEGER PRIMARY KEY,
    task_id            TEXT,
    provider           TEXT NOT NULL,
    model              TEXT NOT NULL,
    prompt_tokens      INTEGER NOT NULL,
    completion_tokens  INTEGER NOT NULL,
    cost_nanousd       INTEGER
) STRICT;
CREATE INDEX model_usage_at ON model_usage(tenant_id, at);
