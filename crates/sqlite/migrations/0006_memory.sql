-- Vector memory: collections of items (files, texts), items cut into chunks. A chunk keeps
-- its embedding as little-endian f32s; search scans one tenant's vectors exactly (the
-- tenant/collection index bounds the scan), so a small tenant's results never depend on
-- other tenants' data. The lexical side is FTS5 (contentless, rows deleted by rowid).
CREATE TABLE memory_collections (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT,
    embed_model  TEXT NOT NULL,
    dims         INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
) STRICT;

CREATE TABLE memory_items (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    collection_id  TEXT NOT NULL REFERENCES memory_collections(id) ON DELETE CASCADE,
    source         TEXT NOT NULL,
    content_hash   TEXT NOT NULL,
    metadata       TEXT NOT NULL,
    chunks         INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    UNIQUE (tenant_id, collection_id, source)
) STRICT;

CREATE TABLE memory_chunks (
    id             INTEGER PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    collection_id  TEXT NOT NULL,
    item_id        TEXT NOT NULL REFERENCES memory_items(id) ON DELETE CASCADE,
    text           TEXT NOT NULL,
    start_line     INTEGER NOT NULL,
    end_line       INTEGER NOT NULL,
    language       TEXT,
    heading        TEXT,
    embedding      BLOB
) STRICT;
CREATE INDEX memory_chunks_scope ON memory_chunks(tenant_id, collection_id);
CREATE INDEX memory_chunks_item ON memory_chunks(item_id);

CREATE VIRTUAL TABLE memory_chunks_fts USING fts5(
    text, heading, source,
    content = '', contentless_delete = 1, tokenize = 'porter unicode61'
);
CREATE TRIGGER memory_chunks_fts_insert AFTER INSERT ON memory_chunks BEGIN
    INSERT INTO memory_chunks_fts (rowid, text, heading, source)
    VALUES (new.id, new.text, new.heading, (SELECT source FROM memory_items WHERE id = new.item_id));
END;
CREATE TRIGGER memory_chunks_fts_delete AFTER DELETE ON memory_chunks BEGIN
    DELETE FROM memory_chunks_fts WHERE rowid = old.id;
END;
