//! Cutting a source into chunks that fit the embedding model: markdown by heading (each
//! chunk records its heading path), everything else by lines, preferring to break at blank
//! lines. Every chunk records its 1-based line range.

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

/// Cuts `text` into pieces of at most `max_tokens` tokens as counted by `count`.
pub fn split(
    path: &str,
    text: &str,
    max_tokens: usize,
    count: &dyn Fn(&str) -> usize,
) -> Vec<Piece> {
    let markdown = language_of(path) == Some("markdown");
    let mut out = Vec::new();
    let mut headings: Vec<(usize, String)> = Vec::new();
    let mut buf = Buffer::default();
    let mut fenced = false;
    for (i, line) in text.lines().enumerate() {
        let n = i as u32 + 1;
        if markdown {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
            } else if !fenced && let Some((level, title)) = heading(line) {
                buf.flush(&mut out, &headings);
                headings.retain(|(l, _)| *l < level);
                headings.push((level, title.to_owned()));
            }
        }
        let tokens = count(line) + 1;
        if tokens > max_tokens {
            // One line longer than the model's window: cut it by characters.
            buf.flush(&mut out, &headings);
            let chars: Vec<char> = line.chars().collect();
            let per = (chars.len() * max_tokens / tokens).max(1);
            for part in chars.chunks(per) {
                let part: String = part.iter().collect();
                buf.push(&part, n, 0);
                buf.flush(&mut out, &headings);
            }
            continue;
        }
        if buf.tokens + tokens > max_tokens {
            buf.flush_at_blank(&mut out, &headings);
            if buf.tokens + tokens > max_tokens {
                buf.flush(&mut out, &headings);
            }
        }
        buf.push(line, n, tokens);
    }
    buf.flush(&mut out, &headings);
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

impl Buffer {
    fn push(&mut self, line: &str, n: u32, tokens: usize) {
        self.lines.push((n, line.to_owned(), tokens));
        self.tokens += tokens;
    }

    fn emit(lines: Vec<(u32, String, usize)>, out: &mut Vec<Piece>, headings: &[(usize, String)]) {
        let text = lines
            .iter()
            .map(|(_, l, _)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        if text.trim().is_empty() {
            return;
        }
        let heading = (!headings.is_empty()).then(|| {
            headings
                .iter()
                .map(|(_, h)| h.as_str())
                .collect::<Vec<_>>()
                .join(" > ")
        });
        out.push(Piece {
            text,
            start_line: lines[0].0,
            end_line: lines[lines.len() - 1].0,
            heading,
        });
    }

    fn flush(&mut self, out: &mut Vec<Piece>, headings: &[(usize, String)]) {
        if !self.lines.is_empty() {
            Self::emit(std::mem::take(&mut self.lines), out, headings);
        }
        self.tokens = 0;
    }

    /// Emits up to the last blank line in the second half of the buffer, keeping the rest;
    /// without one, keeps everything (the caller then flushes all).
    fn flush_at_blank(&mut self, out: &mut Vec<Piece>, headings: &[(usize, String)]) {
        let half = self.lines.len() / 2;
        if let Some(at) = self.lines.iter().rposition(|(_, l, _)| l.trim().is_empty())
            && at >= half
            && at > 0
        {
            let rest = self.lines.split_off(at + 1);
            Self::emit(std::mem::replace(&mut self.lines, rest), out, headings);
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
}
