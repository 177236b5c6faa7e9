-- Workflow documents: LangGraph-style threads and runs, and approvals, as JSON bodies.
CREATE TABLE objects (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    id          TEXT NOT NULL,
    parent      TEXT,
    status      TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, kind, id)
) STRICT;
CREATE INDEX objects_parent ON objects(tenant_id, kind, parent, id);
CREATE INDEX objects_status ON objects(kind, status);
