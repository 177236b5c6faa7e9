-- Lexical analysis in Rust (morningai_core::lexical), the same on both backends: the FTS5
-- table holds already-analysed terms (identifiers split and whole, stemmed, stop words
-- dropped) in two fields, body and names (item path + file path), and BM25 is computed
-- with statistics scoped to the tenant (fts5vocab gives the per-field term counts). The
-- tokenizer is 'ascii': the stored terms are separated by single spaces, and every other
-- character belongs to a term, so FTS5 sees exactly the terms Rust produced. The
-- old table (porter over raw text, with statistics across all tenants) goes; chunks
-- written before this migration have n_terms NULL and are analysed when the store opens.
DROP TRIGGER memory_chunks_fts_insert;
DROP TRIGGER memory_chunks_fts_delete;
DROP TABLE memory_chunks_fts;
ALTER TABLE memory_chunks ADD COLUMN n_terms INTEGER;
CREATE INDEX memory_chunks_unanalysed ON memory_chunks(id) WHERE n_terms IS NULL;

CREATE VIRTUAL TABLE memory_chunks_fts USING fts5(
    body, names,
    content = '', contentless_delete = 1, tokenize = 'ascii'
);
CREATE VIRTUAL TABLE memory_chunks_terms USING fts5vocab(memory_chunks_fts, instance);
CREATE TRIGGER memory_chunks_fts_delete AFTER DELETE ON memory_chunks BEGIN
    DELETE FROM memory_chunks_fts WHERE rowid = old.id;
END;
