-- A counter per tenant, bumped by every write that changes the tenant's chunks. Processes
-- keep a tenant's vectors in memory for search and reload them when the counter moved, so
-- another process writing the same file (the CLI indexing) is seen at the next search.
CREATE TABLE memory_generations (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    generation  INTEGER NOT NULL
) STRICT;
