//! Cutting a source into chunks that fit the embedding model: markdown by heading (each
//! chunk records its heading path), code by syntax where tree-sitter has a grammar (breaks
//! before items, the item path as heading), everything else by lines, preferring to break
//! at blank lines. Every chunk records its 1-based line range.

/// A piece of a source, before embedding.
#[derive(Clone, Debug, PartialEq)]
pub struct Piece {
    pub text: String,
    pub start_line: u32,
    pub end_line: u32,
    pub heading: Option<String>,
}

/// The language of a path, by extension (None for unknown kinds).
pub fn language_of(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
    Some(match ext.as_str() {
        "rs" => "rust",
        "py" | "pyi" => "python",
        "js" | "mjs" | "cjs" | "jsx" => "javascript",
        "ts" | "tsx" => "typescript",
        "go" => "go",
        "java" => "java",
        "c" | "h" => "c",
        "cc" | "cpp" | "cxx" | "hpp" => "cpp",
        "rb" => "ruby",
        "md" | "markdown" | "mdx" => "markdown",
        "rst" => "rst",
        "toml" => "toml",
        "yaml" | "yml" => "yaml",
        "json" => "json",
        "sh" | "bash" => "shell",
        "sql" => "sql",
        "html" | "htm" => "html",
        "css" => "css",
        "txt" => "text",
        _ => return None,
    })
}

/// Cuts `text` into pieces of at most `max_tokens` tokens as counted by `count`. Code in a
/// language with a grammar (see [`crate::syntax`]) breaks before items (top-level first,
/// then members) and records the item path as the heading; markdown records its heading
/// path; other text prefers to break after blank lines.
pub fn split(
    path: &str,
    text: &str,
    max_tokens: usize,
    count: &dyn Fn(&str) -> usize,
) -> Vec<Piece> {
    let language = language_of(path);
    let markdown = language == Some("markdown");
    let outline = language.and_then(|l| crate::syntax::outline(l, text));
    let mut out = Vec::new();
    let mut headings: Vec<(usize, String)> = Vec::new();
    let mut buf = Buffer::default();
    let mut fenced = false;
    let heading_of = |headings: &[(usize, String)], first: u32| match &outline {
        Some(o) => o.path_at(first),
        None => (!headings.is_empty()).then(|| {
            headings
                .iter()
                .map(|(_, h)| h.as_str())
                .collect::<Vec<_>>()
                .join(" > ")
        }),
    };
    let priority = |n: u32| outline.as_ref().and_then(|o| o.breaks.get(&n).copied());
    for (i, line) in text.lines().enumerate() {
        let n = i as u32 + 1;
        if markdown {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
            } else if !fenced && let Some((level, title)) = heading(line) {
                buf.flush(&mut out, &|first| heading_of(&headings, first));
                headings.retain(|(l, _)| *l < level);
                headings.push((level, title.to_owned()));
            }
        }
        let tokens = count(line) + 1;
        let name = |first: u32| heading_of(&headings, first);
        if tokens > max_tokens {
            // One line longer than the model's window: cut it by characters.
            buf.flush(&mut out, &name);
            let chars: Vec<char> = line.chars().collect();
            let per = (chars.len() * max_tokens / tokens).max(1);
            for part in chars.chunks(per) {
                let part: String = part.iter().collect();
                buf.push(&part, n, 0);
                buf.flush(&mut out, &name);
            }
            continue;
        }
        if buf.tokens + tokens > max_tokens {
            buf.flush_at_break(&mut out, &name, &priority);
            if buf.tokens + tokens > max_tokens {
                buf.flush(&mut out, &name);
            }
        }
        buf.push(line, n, tokens);
    }
    buf.flush(&mut out, &|first| heading_of(&headings, first));
    out
}

fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.chars().take_while(|c| *c == '#').count();
    let rest = &line[level..];
    ((1..=6).contains(&level) && rest.starts_with(' ')).then(|| (level, rest.trim()))
}

#[derive(Default)]
struct Buffer {
    lines: Vec<(u32, String, usize)>,
    tokens: usize,
}

type Namer<'a> = &'a dyn Fn(u32) -> Option<String>;

impl Buffer {
    fn push(&mut self, line: &str, n: u32, tokens: usize) {
        self.lines.push((n, line.to_owned(), tokens));
        self.tokens += tokens;
    }

    fn emit(lines: Vec<(u32, String, usize)>, out: &mut Vec<Piece>, name: Namer<'_>) {
        let text = lines
            .iter()
            .map(|(_, l, _)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        if text.trim().is_empty() {
            return;
        }
        out.push(Piece {
            text,
            start_line: lines[0].0,
            end_line: lines[lines.len() - 1].0,
            heading: name(lines[0].0),
        });
    }

    fn flush(&mut self, out: &mut Vec<Piece>, name: Namer<'_>) {
        if !self.lines.is_empty() {
            Self::emit(std::mem::take(&mut self.lines), out, name);
        }
        self.tokens = 0;
    }

    /// Emits the lines before the best break in the latter three quarters of the buffer —
    /// an item start (by its priority), else a line after a blank one, the latest of equals —
    /// keeping the rest; without one, keeps everything (the caller then flushes all).
    fn flush_at_break(
        &mut self,
        out: &mut Vec<Piece>,
        name: Namer<'_>,
        priority: &dyn Fn(u32) -> Option<u8>,
    ) {
        let from = (self.lines.len() / 4).max(1);
        let best = (from..self.lines.len())
            .filter_map(|i| {
                let score = match priority(self.lines[i].0) {
                    Some(p) => p + 1,
                    None if self.lines[i - 1].1.trim().is_empty() => 1,
                    None => return None,
                };
                Some((score, i))
            })
            .max();
        if let Some((_, at)) = best {
            let rest = self.lines.split_off(at);
            Self::emit(std::mem::replace(&mut self.lines, rest), out, name);
            self.tokens = self.lines.iter().map(|(_, _, t)| t).sum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    #[test]
    fn markdown_chunks_follow_headings_and_record_their_path() {
        let doc = "# Guide\nintro text\n## Install\nrun this\n```\n# not a heading\n```\n## Use\ncall it\n### Details\nmore\n# Other\nlast";
        let p = split("docs/guide.md", doc, 100, &words);
        let got: Vec<(Option<&str>, u32, u32)> = p
            .iter()
            .map(|c| (c.heading.as_deref(), c.start_line, c.end_line))
            .collect();
        assert_eq!(
            got,
            [
                (Some("Guide"), 1, 2),
                (Some("Guide > Install"), 3, 7),
                (Some("Guide > Use"), 8, 9),
                (Some("Guide > Use > Details"), 10, 11),
                (Some("Other"), 12, 13),
            ]
        );
        assert!(
            p[1].text.contains("# not a heading"),
            "fenced code is not a heading"
        );
    }

    #[test]
    fn code_breaks_at_blank_lines_within_the_token_limit() {
        let code = "fn a() {\n  one two\n}\n\nfn b() {\n  three four\n}\n\nfn c() {\n  five six\n}";
        let p = split("src/lib.rs", code, 8, &words);
        assert!(p.iter().all(|c| c.text.split_whitespace().count() <= 8));
        assert_eq!(p[0].start_line, 1);
        assert!(p[0].text.starts_with("fn a()"));
        assert!(
            p.iter().any(|c| c.text.starts_with("fn b()")),
            "a chunk starts at the next item: {p:?}"
        );
        assert_eq!(p.last().unwrap().end_line, 11);
        // Every non-blank line is in exactly one chunk.
        let covered: u32 = p.iter().map(|c| c.end_line - c.start_line + 1).sum();
        assert!(covered <= 11);
    }

    #[test]
    fn an_overlong_line_is_cut_and_empty_input_gives_nothing() {
        let line = "x ".repeat(50);
        let p = split("a.txt", &line, 10, &words);
        assert!(p.len() >= 5);
        assert!(p.iter().all(|c| (c.start_line, c.end_line) == (1, 1)));
        assert!(split("a.txt", "\n\n  \n", 10, &words).is_empty());
        assert_eq!(language_of("x/Y.PY"), Some("python"));
        assert_eq!(language_of("Makefile"), None);
    }

    #[test]
    fn rust_breaks_before_items_with_their_docs_and_names_the_item_path() {
        let mut src = String::from(
            "//! Jobs.\n\nuse std::fmt;\n\n/// A queue of jobs.\npub struct Queue {\n    jobs: Vec<u32>,\n}\n\nimpl Queue {\n",
        );
        for name in ["lease", "ack", "nack", "extend"] {
            src.push_str(&format!(
                "    /// Does {name}.\n    pub fn {name}(&mut self, id: u32) -> bool {{\n        let found = self.jobs.contains(&id);\n        // a comment line\n        found\n    }}\n\n"
            ));
        }
        src.push_str("}\n");
        let pieces = split("src/queue.rs", &src, 40, &words);
        assert!(pieces.len() >= 3, "{pieces:#?}");
        let lines: Vec<&str> = src.lines().collect();
        for p in &pieces[1..] {
            let first = lines[p.start_line as usize - 1].trim_start();
            assert!(
                first.starts_with("///")
                    || first.starts_with("impl")
                    || first.starts_with("pub struct"),
                "a chunk starts mid-item at line {}: {first:?}\n{pieces:#?}",
                p.start_line
            );
        }
        let methods: Vec<&Piece> = pieces
            .iter()
            .filter(|p| p.text.contains("pub fn ack"))
            .collect();
        assert_eq!(methods.len(), 1);
        assert!(
            methods[0]
                .heading
                .as_deref()
                .unwrap()
                .starts_with("impl Queue > function"),
            "{:?}",
            methods[0].heading
        );
        // Every line is in exactly one chunk.
        let covered: u32 = pieces.iter().map(|p| p.end_line - p.start_line + 1).sum();
        assert!(covered <= lines.len() as u32);
    }
}
