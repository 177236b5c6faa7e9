-- LangGraph's long-term store: JSON documents under a namespace (`label.label.`) and a key,
-- with an optional embedding (little-endian f32) and time to live.
CREATE TABLE kv_items (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    namespace    TEXT NOT NULL,
    key          TEXT NOT NULL,
    value        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    ttl_minutes  REAL,
    expires_at   INTEGER,
    embedding    BLOB,
    PRIMARY KEY (tenant_id, namespace, key)
) STRICT, WITHOUT ROWID;
