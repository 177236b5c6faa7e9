-- The embedding cache: each chunk records the key (model + embedded text hash) of its
-- vector, so re-indexing embeds only chunks whose text changed.
ALTER TABLE memory_chunks ADD COLUMN embed_key text;
CREATE INDEX memory_chunks_embed_key ON memory_chunks (tenant_id, embed_key) WHERE embed_key IS NOT NULL;
