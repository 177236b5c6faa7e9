-- Chunks stored before their vector (indexing is searchable lexically at once; the
-- vectors follow in a background pass). The pass pages through them by id, and a search
-- asks how many are left and how many there are in all: two counts over partial indexes,
-- without reading a chunk.
CREATE INDEX memory_chunks_unembedded ON memory_chunks(tenant_id, collection_id, id)
    WHERE embedding IS NULL AND embed_key IS NOT NULL;
CREATE INDEX memory_chunks_keyed ON memory_chunks(tenant_id, collection_id)
    WHERE embed_key IS NOT NULL;
