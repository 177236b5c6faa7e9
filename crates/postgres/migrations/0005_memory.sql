-- Vector memory (pgvector): collections, items, chunks with an embedding and a tsvector.
-- Embeddings are `vector` of any dimension; an HNSW index serves the 384-d default
-- (an expression index per dimension: add one per model you use). A btree on
-- (tenant_id, collection_id) lets the planner scan a small tenant exactly, and searches set
-- hnsw.iterative_scan so a filtered HNSW scan keeps going until it has k rows.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE memory_collections (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name         text NOT NULL,
    description  text,
    embed_model  text NOT NULL,
    dims         integer NOT NULL,
    created_at   timestamptz NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE memory_items (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    collection_id  uuid NOT NULL REFERENCES memory_collections(id) ON DELETE CASCADE,
    source         text NOT NULL,
    content_hash   text NOT NULL,
    metadata       jsonb NOT NULL,
    chunks         integer NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    UNIQUE (tenant_id, collection_id, source)
);

CREATE TABLE memory_chunks (
    id             bigserial PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    collection_id  uuid NOT NULL,
    item_id        uuid NOT NULL REFERENCES memory_items(id) ON DELETE CASCADE,
    source         text NOT NULL,
    text           text NOT NULL,
    start_line     integer NOT NULL,
    end_line       integer NOT NULL,
    language       text,
    heading        text,
    dims           integer,
    embedding      vector,
    tsv            tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', coalesce(heading, '') || ' ' || source), 'A')
        || to_tsvector('english', text)
    ) STORED
);
CREATE INDEX memory_chunks_scope ON memory_chunks (tenant_id, collection_id);
CREATE INDEX memory_chunks_item ON memory_chunks (item_id);
CREATE INDEX memory_chunks_tsv ON memory_chunks USING gin (tsv);
CREATE INDEX memory_chunks_hnsw_384 ON memory_chunks
    USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE dims = 384;

GRANT SELECT, INSERT, UPDATE, DELETE ON memory_collections, memory_items, memory_chunks TO morningai_tenant;
GRANT USAGE ON SEQUENCE memory_chunks_id_seq TO morningai_tenant;
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['memory_collections', 'memory_items', 'memory_chunks'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I TO morningai_tenant
            USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
            WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)$p$, t);
        EXECUTE format('CREATE POLICY platform_path ON %I TO %I USING (true) WITH CHECK (true)', t, current_user);
    END LOOP;
END
$$;
