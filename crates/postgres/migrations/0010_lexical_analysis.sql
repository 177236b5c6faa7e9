-- Lexical analysis in Rust (morningai_core::lexical), the same on both backends: the
-- tsvector is built from already-analysed terms (body at weight D, names — item path and
-- file path — at weight A) instead of the 'english' parser over raw text, and BM25 is
-- computed with statistics scoped to the tenant. Chunks written before this migration
-- have n_terms NULL and are analysed right after it (under the migration lock).
ALTER TABLE memory_chunks DROP COLUMN tsv;
ALTER TABLE memory_chunks ADD COLUMN tsv tsvector, ADD COLUMN n_terms integer;
CREATE INDEX memory_chunks_tsv ON memory_chunks USING gin (tsv);
CREATE INDEX memory_chunks_unanalysed ON memory_chunks (id) WHERE n_terms IS NULL;
