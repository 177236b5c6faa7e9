//! Lexical analysis and ranking shared by both backends, so that a tenant who moves from
//! embedded SQLite to PostgreSQL gets the same keyword results.
//!
//! Analysis happens here, not in either database's tokenizer: words are cut at anything
//! that is not a letter or digit, identifiers are split into their words (`snake_case`,
//! `CamelCase`, `HTTPServer`) and also kept whole (`parseheader`), English stop words are
//! dropped, and each word is reduced to its Snowball English stem. The backends store the
//! resulting terms as space-separated lower-case letters and digits, which both FTS5's
//! `unicode61` tokenizer and a hand-built `tsvector` take exactly as given.
//!
//! Ranking is BM25 with statistics (chunk count, average length, document frequencies)
//! taken over the search's own scope — one tenant, optionally one collection — so no
//! other tenant's content can move a result. A chunk has two fields: its body, and its
//! names (the item path such as `class Queue > function lease`, and the file path), which
//! count [`NAME_WEIGHT`] times.

use rust_stemmers::{Algorithm, Stemmer};
use std::sync::LazyLock;

/// How much more a term in a chunk's names (item path, file path) counts than in its body.
pub const NAME_WEIGHT: f64 = 3.0;
/// BM25 term-frequency saturation.
pub const K1: f64 = 1.2;
/// BM25 length normalisation.
pub const B: f64 = 0.75;
/// Longest word considered (longer runs are data, not words).
const MAX_WORD: usize = 64;
/// Most distinct terms a query contributes.
const MAX_QUERY_TERMS: usize = 32;

static STEMMER: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::English));

/// Snowball's English stop words (and the contraction stems Snowball produces).
const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "down",
    "during",
    "each",
    "few",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "me",
    "more",
    "most",
    "my",
    "myself",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "ought",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "same",
    "she",
    "should",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

/// Abbreviations common in code, also read as the words they stand for (sorted): a query
/// about "the function that parses the configuration" meets `fn parse_cfg`.
const ABBREVIATIONS: &[(&str, &[&str])] = &[
    ("addr", &["address"]),
    ("arg", &["argument"]),
    ("args", &["argument"]),
    ("buf", &["buffer"]),
    ("cfg", &["configuration"]),
    ("conn", &["connection"]),
    ("ctx", &["context"]),
    ("db", &["database"]),
    ("dir", &["directory"]),
    ("env", &["environment"]),
    ("err", &["error"]),
    ("fd", &["file", "descriptor"]),
    ("fn", &["function"]),
    ("func", &["function"]),
    ("impl", &["implementation"]),
    ("init", &["initialize"]),
    ("max", &["maximum"]),
    ("min", &["minimum"]),
    ("msg", &["message"]),
    ("param", &["parameter"]),
    ("params", &["parameter"]),
    ("req", &["request"]),
    ("res", &["response"]),
    ("resp", &["response"]),
    ("str", &["string"]),
];

fn is_stop_word(w: &str) -> bool {
    STOP_WORDS.binary_search(&w).is_ok()
}

/// The parts of an identifier: `parse_header` → parse, header; `HTTPServerConfig` → HTTP,
/// Server, Config; `sha256Sum` → sha256, Sum.
fn parts(word: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for piece in word.split('_').filter(|p| !p.is_empty()) {
        let chars: Vec<(usize, char)> = piece.char_indices().collect();
        let mut start = 0;
        for i in 1..chars.len() {
            let (prev, cur) = (chars[i - 1].1, chars[i].1);
            let next_lower = chars.get(i + 1).is_some_and(|(_, c)| c.is_lowercase());
            // aB → a|B; ABc → A|Bc (the last capital of an acronym starts the next word).
            let boundary = cur.is_uppercase()
                && (prev.is_lowercase()
                    || prev.is_numeric()
                    || (prev.is_uppercase() && next_lower));
            if boundary {
                out.push(&piece[start..chars[i].0]);
                start = chars[i].0;
            }
        }
        out.push(&piece[start..]);
    }
    out
}

/// The stem of one lower-case word, or None for a stop word or a lone letter.
fn stem(word: &str) -> Option<String> {
    if is_stop_word(word) || (word.chars().count() < 2 && !word.chars().all(char::is_numeric)) {
        return None;
    }
    Some(STEMMER.stem(word).into_owned())
}

/// Calls `emit` with every term of `text`, in order, duplicates included.
fn each_term(text: &str, mut emit: impl FnMut(String)) {
    for word in text.split(|c: char| !c.is_alphanumeric() && c != '_') {
        if word.is_empty() || word.chars().count() > MAX_WORD {
            continue;
        }
        let parts = parts(word);
        let mut kept = 0;
        for p in &parts {
            let lower = p.to_lowercase();
            if let Some(s) = stem(&lower) {
                emit(s);
                kept += 1;
            }
            if let Ok(i) = ABBREVIATIONS.binary_search_by(|(a, _)| a.cmp(&lower.as_str())) {
                ABBREVIATIONS[i]
                    .1
                    .iter()
                    .filter_map(|w| stem(w))
                    .for_each(&mut emit);
            }
        }
        if parts.len() > 1 && kept > 0 {
            // The identifier whole, so that naming it exactly ranks it first.
            emit(parts.concat().to_lowercase());
        }
    }
}

/// The terms of `text`, in order, duplicates included.
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    each_term(text, |t| out.push(t));
    out
}

/// The terms of a free-text query, deduplicated, at most 32: letters and digits only, so
/// no query syntax of either backend can be injected.
pub fn query_terms(query: &str) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    each_term(query, |t| {
        if out.len() < MAX_QUERY_TERMS && seen.insert(t.clone()) {
            out.push(t);
        }
    });
    out
}

/// A chunk as its lexical index holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysed {
    /// The body's terms, space-separated.
    pub body: String,
    /// The terms of the item path and the file path, space-separated.
    pub names: String,
    /// How many terms the two fields hold (BM25's document length).
    pub length: u32,
}

/// Analyses a chunk: its text, its heading (item path) and its file path.
pub fn analyse(text: &str, heading: Option<&str>, source: &str) -> Analysed {
    let body = terms(text);
    let mut names = terms(heading.unwrap_or_default());
    names.extend(terms(source));
    Analysed {
        length: (body.len() + names.len()) as u32,
        body: body.join(" "),
        names: names.join(" "),
    }
}

/// BM25's inverse document frequency (the always-positive form) of a term that `holding`
/// of the scope's `chunks` contain: rare terms weigh most.
pub fn idf(chunks: u64, holding: u64) -> f64 {
    let (n, df) = (chunks as f64, holding.min(chunks) as f64);
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}

/// One query term's BM25 contribution to one chunk, as an SQL expression both backends
/// sum per chunk: over `q.idf` (the term's [`idf`]), `t.body_tf` and `t.names_tf` (its
/// counts in the two fields), `c.n_terms` (the chunk's length) and `k.avgdl` (the scope's
/// average length).
pub fn score_sql() -> String {
    format!(
        "q.idf * (t.body_tf + {NAME_WEIGHT:.1} * t.names_tf) * {k1p:.1} \
         / ((t.body_tf + {NAME_WEIGHT:.1} * t.names_tf) \
            + {K1:.2} * ({one_b:.2} + {B:.2} * c.n_terms / k.avgdl))",
        k1p = K1 + 1.0,
        one_b = 1.0 - B,
    )
}

/// [`score_sql`]'s expression computed in Rust, operation for operation: for a backend that
/// counts a small scope's terms itself instead of reading them from its index.
pub fn bm25(idf: f64, body_tf: f64, names_tf: f64, length: f64, avgdl: f64) -> f64 {
    let tf = body_tf + NAME_WEIGHT * names_tf;
    idf * tf * (K1 + 1.0) / (tf + K1 * ((1.0 - B) + B * length / avgdl))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_split_and_kept_whole() {
        assert_eq!(
            terms("parse_header HTTPServerConfig sha256Sum"),
            [
                "pars",
                "header",
                "parseheader",
                "http",
                "server",
                "config",
                "httpserverconfig",
                "sha256",
                "sum",
                "sha256sum"
            ]
        );
        // The same identifier in either convention meets the same whole term.
        assert!(terms("ParseHeader").contains(&"parseheader".to_owned()));
        // Abbreviations are also read as their words: `parse_cfg` meets "configuration".
        assert_eq!(terms("parse_cfg"), ["pars", "cfg", "configur", "parsecfg"]);
        assert!(
            ABBREVIATIONS.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted for binary search"
        );
    }

    #[test]
    fn words_are_stemmed_and_stop_words_dropped() {
        assert_eq!(
            query_terms("How are the jobs registered? Registering jobs, serializers"),
            ["job", "regist", "serial"]
        );
        assert_eq!(terms("a b 7 x"), ["7"], "lone letters go, lone digits stay");
        assert!(
            STOP_WORDS.windows(2).all(|w| w[0] < w[1]),
            "sorted for binary search"
        );
    }

    #[test]
    fn query_terms_cannot_carry_syntax() {
        let q = query_terms("\"x\" OR y* NEAR(z) -- ; DROP TABLE t; 'a':*");
        assert!(
            q.iter().all(|t| t.chars().all(char::is_alphanumeric)),
            "{q:?}"
        );
        let many: String = (0..100).map(|i| format!("word{i} ")).collect();
        assert_eq!(query_terms(&many).len(), 32);
        assert!(
            query_terms(&"x".repeat(65)).is_empty(),
            "overlong runs are data"
        );
    }

    #[test]
    fn a_chunk_has_body_and_name_fields() {
        let a = analyse(
            "Registers the jobs.",
            Some("impl Registry > function register_job"),
            "src/registry.rs",
        );
        assert_eq!(a.body, "regist job");
        assert_eq!(
            a.names,
            "impl implement registri function regist job registerjob src registri rs"
        );
        assert_eq!(a.length, 12);
    }

    #[test]
    fn rare_terms_weigh_more() {
        assert!(idf(1000, 3) > idf(1000, 300));
        assert!(
            idf(10, 10) > 0.0,
            "a term in every chunk still counts a little"
        );
        assert!(score_sql().contains("3.0 * t.names_tf"), "{}", score_sql());
    }
}
