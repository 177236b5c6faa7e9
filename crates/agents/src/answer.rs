//! Answering a question from retrieved passages: with a chat model when one is configured
//! (the prompt allows only the given sources and asks for their citations), otherwise
//! extractively — the offline provider selects and arranges the most relevant passages,
//! quoted verbatim with their citations, and says plainly that no language model wrote it.

use morningai_core::Result;
use morningai_core::ai::{ChatMessage, ChatModel, ChatRequest, DeltaSink, TokenUsage};
use morningai_core::lexical;
use morningai_core::memory::{ChunkHit, query_terms};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, HashSet};

/// A passage of an indexed source, as `source:start-end`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
pub struct Citation {
    pub source: String,
    pub start_line: u32,
    pub end_line: u32,
}

impl std::fmt::Display for Citation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}-{}", self.source, self.start_line, self.end_line)
    }
}

/// Who wrote an answer.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GeneratedBy {
    /// Passages selected from memory and quoted; no language model was involved.
    Extractive,
    Model {
        provider: String,
        model: String,
        #[schema(value_type = Object)]
        usage: Option<TokenUsage>,
    },
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Answer {
    /// Markdown.
    pub text: String,
    /// The passages the answer rests on.
    pub citations: Vec<Citation>,
    pub generated_by: GeneratedBy,
}

impl Citation {
    /// The whole passage of a hit.
    pub fn of(hit: &ChunkHit) -> Self {
        Citation {
            source: hit.source.clone(),
            start_line: hit.start_line,
            end_line: hit.end_line,
        }
    }
}

/// Whether a passage is prose (quoted) rather than code (fenced).
pub fn is_prose(hit: &ChunkHit) -> bool {
    matches!(
        hit.language.as_deref(),
        None | Some("" | "markdown" | "text" | "rst")
    )
}

/// Passages as a model reads them: `[n] [path:start-end]` then the text.
pub fn numbered_sources(hits: &[ChunkHit]) -> String {
    hits.iter()
        .enumerate()
        .map(|(i, h)| format!("[{}] [{}]\n{}\n\n", i + 1, Citation::of(h), h.text))
        .collect()
}

/// A passage chosen for a question, with the sentence that introduces it.
#[derive(Debug)]
pub struct Passage<'a> {
    pub hit: &'a ChunkHit,
    /// What the passage shows, from its item path and doc comment (never invented):
    /// e.g. "`impl Queue > function lease` in `src/queue.rs`: Leases the next job."
    pub intro: String,
}

/// The passages chosen for a question, and the question's words none of them contains.
#[derive(Debug)]
pub struct Selection<'a> {
    pub passages: Vec<Passage<'a>>,
    pub missing: Vec<String>,
}

/// Whether a path is a test, benchmark or fixture (down-weighted unless asked about).
pub fn is_test_path(path: &str) -> bool {
    let lower = path.to_lowercase();
    let file = lower.rsplit('/').next().unwrap_or(&lower);
    lower.split('/').rev().skip(1).any(|dir| {
        matches!(
            dir,
            "test"
                | "tests"
                | "testing"
                | "testdata"
                | "bench"
                | "benches"
                | "benchmark"
                | "benchmarks"
                | "fixtures"
                | "__tests__"
                | "spec"
        )
    }) || file.starts_with("test_")
        || file == "conftest.py"
        || [
            "_test.go",
            "_test.rs",
            "_test.py",
            "_tests.rs",
            ".test.js",
            ".test.ts",
            ".spec.js",
            ".spec.ts",
            "_bench.rs",
            "_bench.py",
        ]
        .iter()
        .any(|end| file.ends_with(end))
}

/// Whether a passage is test code: in a test path, or an item of a test module or a test
/// function (Rust's inline `mod tests`, Python's `class TestX` / `def test_x`).
fn is_test(hit: &ChunkHit) -> bool {
    is_test_path(&hit.source)
        || hit.heading.as_deref().is_some_and(|h| {
            h.split(" > ").any(|item| {
                let name = item.split_whitespace().nth(1).unwrap_or_default();
                let lower = name.to_lowercase();
                lower == "tests"
                    || lower == "test"
                    || lower.starts_with("test_")
                    || lower.ends_with("_tests")
                    || lower.ends_with("_test")
                    || name.starts_with("Test")
            })
        })
}

/// Release history (a changelog) or a block of imports: rarely what a question is about.
fn is_history_or_imports(hit: &ChunkHit) -> bool {
    let file = hit
        .source
        .rsplit('/')
        .next()
        .unwrap_or(&hit.source)
        .to_uppercase();
    ["CHANGELOG", "CHANGES", "HISTORY", "NEWS", "RELEASES"]
        .iter()
        .any(|n| file.starts_with(n))
        || matches!(
            hit.heading.as_deref(),
            Some("use" | "import" | "extern crate")
        )
}

/// Doc-comment and docstring openers, in the languages the chunker knows.
const DOC_OPENERS: &[&str] = &["///", "//!", "/**", "\"\"\"", "'''", "* ", "# "];

/// The first line of a code passage's doc comment or docstring, cut at the end of its
/// first sentence (prose needs none: its quotation opens with it).
fn doc_line(hit: &ChunkHit) -> Option<String> {
    if is_prose(hit) {
        return None;
    }
    let line = hit.text.lines().map(str::trim).find_map(|l| {
        DOC_OPENERS
            .iter()
            .find_map(|p| l.strip_prefix(p))
            .map(|rest| rest.trim().trim_end_matches("\"\"\"").trim())
            .filter(|rest| rest.chars().any(char::is_alphabetic))
            .map(str::to_owned)
    })?;
    let sentence = match line.find(". ") {
        Some(i) => &line[..=i],
        None => &line,
    };
    Some(sentence.chars().take(160).collect())
}

fn intro(hit: &ChunkHit) -> String {
    let what = match hit.heading.as_deref().filter(|h| !h.is_empty()) {
        Some(h) => format!("`{h}` in `{}`", hit.source),
        None => format!("`{}`", hit.source),
    };
    match doc_line(hit) {
        Some(doc) => format!("{what}: {doc}"),
        None => what,
    }
}

/// The index terms of a passage: its text, item path and file path.
pub fn passage_terms(hit: &ChunkHit) -> Vec<String> {
    let mut words = lexical::terms(&hit.text);
    words.extend(lexical::terms(hit.heading.as_deref().unwrap_or_default()));
    words.extend(lexical::terms(&hit.source));
    words
}

/// Most passages a selection holds, and most from one file while other files answer.
const MAX_PASSAGES: usize = 6;
const PER_FILE: usize = 2;

/// Chooses the passages that answer `question` among `hits` (best first). A passage's
/// relevance is the share of the question's terms it holds (text, item path, file path),
/// halved for tests, benchmarks, fixtures, changelogs and import blocks unless the
/// question is about them; it must reach 85 % of the best passage's (a relevance floor),
/// and no file gives more than two passages while other files qualify.
pub fn select<'a>(question: &str, hits: &'a [ChunkHit]) -> Selection<'a> {
    let terms = query_terms(question);
    let about_tests = terms
        .iter()
        .any(|t| ["test", "bench", "benchmark", "fixtur", "spec"].contains(&t.as_str()));
    let covered: Vec<HashSet<String>> = hits
        .iter()
        .map(|h| {
            passage_terms(h)
                .into_iter()
                .filter(|w| terms.contains(w))
                .collect()
        })
        .collect();
    let about_history = terms
        .iter()
        .any(|t| ["changelog", "histori", "releas", "version"].contains(&t.as_str()));
    let relevance: Vec<f64> = (0..hits.len())
        .map(|i| {
            let share = covered[i].len() as f64 / terms.len().max(1) as f64;
            let h = &hits[i];
            let aside =
                (!about_tests && is_test(h)) || (!about_history && is_history_or_imports(h));
            share * if aside { 0.5 } else { 1.0 }
        })
        .collect();
    // The floor: at least 85 % of the best passage's relevance.
    let best = relevance.iter().copied().fold(0.0, f64::max);
    let mut ranked: Vec<usize> = (0..hits.len())
        .filter(|&i| best > 0.0 && relevance[i] >= 0.85 * best)
        .collect();
    ranked.sort_by(|&a, &b| relevance[b].total_cmp(&relevance[a]).then(a.cmp(&b)));
    let mut chosen: Vec<usize> = Vec::new();
    let mut per_file: HashMap<&str, usize> = HashMap::new();
    for &i in &ranked {
        let n = per_file.entry(hits[i].source.as_str()).or_default();
        if *n < PER_FILE && chosen.len() < MAX_PASSAGES {
            *n += 1;
            chosen.push(i);
        }
    }
    // A third passage of a file only when no other file is left to give one.
    for &i in &ranked {
        if chosen.len() < MAX_PASSAGES && !chosen.contains(&i) {
            chosen.push(i);
        }
    }
    let found: HashSet<&String> = chosen.iter().flat_map(|&i| covered[i].iter()).collect();
    let mut missing: Vec<String> = Vec::new();
    for word in question.split(|c: char| !c.is_alphanumeric() && c != '_') {
        let stems = lexical::terms(word);
        if !stems.is_empty()
            && stems.iter().all(|s| !found.contains(s))
            && !missing.iter().any(|m| m == word)
        {
            missing.push(word.to_owned());
        }
    }
    Selection {
        passages: chosen
            .into_iter()
            .map(|i| Passage {
                hit: &hits[i],
                intro: intro(&hits[i]),
            })
            .collect(),
        missing,
    }
}

/// A run of non-blank lines of a passage, with its place in the source.
struct Block<'a> {
    hit: &'a ChunkHit,
    rank: usize,
    text: String,
    start: u32,
    end: u32,
}

fn blocks(rank: usize, hit: &ChunkHit) -> Vec<Block<'_>> {
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut first = hit.start_line;
    let lines: Vec<&str> = hit.text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let n = hit.start_line + i as u32;
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(Block {
                    hit,
                    rank,
                    text: current.join("\n"),
                    start: first,
                    end: n - 1,
                });
                current.clear();
            }
            continue;
        }
        if current.is_empty() {
            first = n;
        }
        current.push(line);
    }
    if !current.is_empty() {
        let end = hit.start_line + lines.len().saturating_sub(1) as u32;
        out.push(Block {
            hit,
            rank,
            text: current.join("\n"),
            start: first,
            end,
        });
    }
    out
}

/// How much of the question a block covers (in analysed terms: stems, identifier words),
/// favouring passages retrieval ranked higher.
fn score(block: &Block<'_>, terms: &[String]) -> f64 {
    let words: std::collections::HashSet<String> =
        lexical::terms(&block.text).into_iter().collect();
    let covered = terms.iter().filter(|t| words.contains(t.as_str())).count() as f64;
    let coverage = if terms.is_empty() {
        0.0
    } else {
        covered / terms.len() as f64
    };
    coverage + 1.0 / (block.rank as f64 + 2.0)
}

/// The most relevant passages, quoted verbatim with their citations, at most `budget`
/// characters of quotation.
pub fn extractive(question: &str, hits: &[ChunkHit], budget: usize) -> Answer {
    extractive_from(question, &select(question, hits), budget)
}

/// As [`extractive`], from passages already selected for the question.
pub fn extractive_from(question: &str, selection: &Selection<'_>, budget: usize) -> Answer {
    let terms = query_terms(question);
    let mut candidates: Vec<(f64, Block<'_>)> = selection
        .passages
        .iter()
        .enumerate()
        .flat_map(|(rank, p)| blocks(rank, p.hit))
        .map(|b| (score(&b, &terms), b))
        .collect();
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.rank.cmp(&b.1.rank)));
    let mut chosen: Vec<Block<'_>> = Vec::new();
    let mut used = 0;
    let mut seen_text = BTreeSet::new();
    for (_, b) in candidates {
        if chosen.len() == 6 || (used > 0 && used + b.text.len() > budget) {
            continue;
        }
        if !seen_text.insert(b.text.trim().to_owned()) {
            continue;
        }
        used += b.text.len();
        chosen.push(b);
    }
    let mut text = String::from(
        "> Extractive answer: the passages below are quoted from the indexed sources that best match the question; no language model wrote or checked this text.\n",
    );
    if chosen.is_empty() {
        text.push_str("\nNothing in the searched memory matches this question.\n");
    } else if !selection.missing.is_empty() {
        text.push_str(&format!(
            "\nNone of these passages mentions: {}.\n",
            selection.missing.join(", ")
        ));
    }
    let mut citations = Vec::new();
    for b in &chosen {
        let c = Citation {
            source: b.hit.source.clone(),
            start_line: b.start,
            end_line: b.end,
        };
        let lang = b.hit.language.as_deref().unwrap_or("");
        text.push_str(&format!("\n**`{c}`**"));
        if let Some(h) = b.hit.heading.as_deref().filter(|h| !h.is_empty()) {
            text.push_str(&format!(" — {h}"));
        }
        text.push('\n');
        if is_prose(b.hit) {
            for line in b.text.lines() {
                text.push_str(&format!("> {line}\n"));
            }
        } else {
            let fence = if b.text.contains("```") {
                "````"
            } else {
                "```"
            };
            text.push_str(&format!("{fence}{lang}\n{}\n{fence}\n", b.text));
        }
        citations.push(c);
    }
    Answer {
        text,
        citations,
        generated_by: GeneratedBy::Extractive,
    }
}

/// The system prompt of a grounded answer.
pub const GROUNDED_PROMPT: &str = "You answer questions about a code base using ONLY the numbered sources given. \
Every factual sentence must cite the source it comes from with its label in square brackets, for example [src/lib.rs:10-24]. \
Never cite a label that is not listed, never invent file paths, functions or behaviour. \
If the sources do not answer the question, say so plainly.";

/// How a grounded answer is asked for: the system prompt and the sampling temperature.
pub struct Instructions {
    pub system: String,
    pub temperature: f32,
}

impl Default for Instructions {
    fn default() -> Self {
        Self {
            system: GROUNDED_PROMPT.to_owned(),
            temperature: 0.1,
        }
    }
}

/// Asks `model` to answer from `hits`; the citations are the given labels the answer uses.
pub async fn grounded(
    model: &dyn ChatModel,
    question: &str,
    hits: &[ChunkHit],
    how: Instructions,
    on_delta: Option<DeltaSink<'_>>,
) -> Result<Answer> {
    let sources = numbered_sources(hits);
    let req = ChatRequest {
        messages: vec![
            ChatMessage::system(how.system),
            ChatMessage::user(format!("Sources:\n\n{sources}Question: {question}")),
        ],
        temperature: Some(how.temperature),
        max_tokens: Some(1_024),
        ..ChatRequest::default()
    };
    let r = model.chat(&req, on_delta).await?;
    let citations = hits
        .iter()
        .map(Citation::of)
        .filter(|c| r.content.contains(&format!("[{c}]")))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok(Answer {
        text: r.content,
        citations,
        generated_by: GeneratedBy::Model {
            provider: model.provider().to_owned(),
            model: r.model,
            usage: r.usage,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use morningai_core::{CollectionId, ItemId};

    fn hit(source: &str, start: u32, text: &str, language: Option<&str>) -> ChunkHit {
        ChunkHit {
            chunk_id: 1,
            item_id: ItemId::new(),
            collection_id: CollectionId::new(),
            source: source.into(),
            text: text.into(),
            start_line: start,
            end_line: start + text.lines().count() as u32 - 1,
            language: language.map(str::to_owned),
            heading: None,
            metadata: serde_json::Value::Null,
            score: 0.5,
        }
    }

    #[test]
    fn quotes_the_matching_blocks_with_their_exact_lines() {
        let hits = [
            hit(
                "README.md",
                10,
                "# Intro\nWelcome.\n\nRetries use exponential backoff\nwith jitter.",
                Some("markdown"),
            ),
            hit(
                "src/retry.rs",
                40,
                "fn other() {}\n\npub fn backoff(attempt: u32) -> Duration {\n    base * 2u32.pow(attempt)\n}",
                Some("rust"),
            ),
        ];
        let a = extractive("How does backoff work for retries?", &hits, 2_000);
        assert_eq!(a.generated_by, GeneratedBy::Extractive);
        assert!(a.text.starts_with("> Extractive answer"), "{}", a.text);
        // The best block first: it covers both content words.
        assert_eq!(
            a.citations[0],
            Citation {
                source: "README.md".into(),
                start_line: 13,
                end_line: 14
            }
        );
        assert!(a.citations.contains(&Citation {
            source: "src/retry.rs".into(),
            start_line: 42,
            end_line: 44
        }));
        assert!(a.text.contains("```rust\npub fn backoff"), "{}", a.text);
        assert!(
            a.text.contains("> Retries use exponential backoff"),
            "{}",
            a.text
        );
    }

    fn named(source: &str, heading: &str, text: &str) -> ChunkHit {
        let mut h = hit(source, 1, text, Some("rust"));
        h.heading = Some(heading.into());
        h
    }

    #[test]
    fn selection_keeps_what_answers_and_says_what_is_missing() {
        let hits = [
            named(
                "benches/queue_bench.rs",
                "function bench_lease",
                "/// Times lease on the queue.\nfn bench_lease() { queue.lease(); }",
            ),
            named(
                "src/queue.rs",
                "impl Queue > function lease",
                "/// Leases the next job of the queue. Then more.\npub fn lease(&mut self) {}",
            ),
            named(
                "src/queue.rs",
                "impl Queue > function release",
                "/// Gives a leased job back to the queue.\npub fn release(&mut self) {}",
            ),
            named(
                "src/queue.rs",
                "impl Queue > function requeue",
                "/// Puts a leased job back in the queue.\npub fn requeue(&mut self) {}",
            ),
            named(
                "src/config.rs",
                "struct Config",
                "/// Settings.\npub struct Config { pub port: u16 }",
            ),
            named(
                "src/worker.rs",
                "function run",
                "/// Leases jobs from the queue forever.\npub fn run() {}",
            ),
        ];
        let s = select(
            "How does the queue lease a job, and what about mutexes?",
            &hits,
        );
        let sources: Vec<&str> = s.passages.iter().map(|p| p.hit.source.as_str()).collect();
        assert!(
            !sources.contains(&"src/config.rs"),
            "below the relevance floor: {sources:?}"
        );
        assert_eq!(
            sources.iter().filter(|s| **s == "src/queue.rs").count(),
            3,
            "{sources:?}"
        );
        assert_eq!(
            sources.last(),
            Some(&"src/queue.rs"),
            "a file's third passage only after every other file that answers: {sources:?}"
        );
        assert_eq!(
            sources[..3],
            ["src/queue.rs", "src/queue.rs", "src/worker.rs"],
            "equal relevance keeps retrieval's order: {sources:?}"
        );
        assert!(
            !sources.iter().any(|s| s.starts_with("benches/")),
            "a benchmark counts half, here under the floor: {sources:?}"
        );
        assert_eq!(
            s.passages[0].intro,
            "`impl Queue > function lease` in `src/queue.rs`: Leases the next job of the queue."
        );
        assert_eq!(s.missing, ["mutexes"]);
        let a = extractive(
            "How does the queue lease a job, and what about mutexes?",
            &hits,
            2_000,
        );
        assert!(
            a.text.contains("None of these passages mentions: mutexes."),
            "{}",
            a.text
        );
        assert!(
            a.citations.iter().all(|c| c.source != "src/config.rs"),
            "{:?}",
            a.citations
        );
        // Asked about benchmarks, they count in full.
        let s = select("which benchmark times the queue lease?", &hits);
        assert_eq!(s.passages[0].hit.source, "benches/queue_bench.rs");
    }

    #[test]
    fn test_paths_are_recognised() {
        for p in [
            "tests/api.rs",
            "src/foo_test.go",
            "pkg/test_models.py",
            "benches/q.rs",
            "web/a.spec.ts",
            "conftest.py",
        ] {
            assert!(is_test_path(p), "{p}");
        }
        for p in [
            "src/testing_utils_are_not.rs",
            "src/latest.rs",
            "docs/contest.md",
        ] {
            assert!(!is_test_path(p), "{p}");
        }
    }

    #[test]
    fn says_so_when_nothing_matches() {
        let a = extractive("anything", &[], 2_000);
        assert!(a.citations.is_empty());
        assert!(a.text.contains("Nothing in the searched memory matches"));
    }
}
