//! Source structure from tree-sitter grammars (Rust, Python, JavaScript, Go): where the
//! items of a file start — top-level items, and the members of containers such as `impl`
//! blocks and classes, each with the comments and attributes right above it — and what
//! they are called. The chunker breaks at these lines and records the item path as the
//! chunk's heading; code generation uses [`parses`] to check that a changed file still parses.

use std::collections::BTreeMap;
use tree_sitter::{Language, Node, Parser};

fn grammar(language: &str) -> Option<Language> {
    Some(match language {
        "rust" => tree_sitter_rust::LANGUAGE.into(),
        "python" => tree_sitter_python::LANGUAGE.into(),
        "javascript" => tree_sitter_javascript::LANGUAGE.into(),
        "go" => tree_sitter_go::LANGUAGE.into(),
        _ => return None,
    })
}

/// Whether tree-sitter has a grammar for `language` here.
pub fn supported(language: &str) -> bool {
    grammar(language).is_some()
}

fn parse(language: &str, text: &str) -> Option<tree_sitter::Tree> {
    let mut parser = Parser::new();
    parser.set_language(&grammar(language)?).ok()?;
    parser.parse(text, None)
}

/// None when there is no grammar for the language; else the first syntax error's 1-based
/// line and column, or Ok.
pub fn parses(language: &str, text: &str) -> Option<Result<(), (u32, u32)>> {
    let tree = parse(language, text)?;
    let root = tree.root_node();
    if !root.has_error() {
        return Some(Ok(()));
    }
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        if n.is_error() || n.is_missing() {
            let p = n.start_position();
            return Some(Err((p.row as u32 + 1, p.column as u32 + 1)));
        }
        let mut cursor = n.walk();
        let children: Vec<Node<'_>> = n.children(&mut cursor).filter(|c| c.has_error()).collect();
        stack.extend(children.into_iter().rev());
    }
    let p = root.start_position();
    Some(Err((p.row as u32 + 1, p.column as u32 + 1)))
}

/// An item of a file: its lines (1-based, inclusive), its label (`function lease`,
/// `impl Queue`) and its depth (0: top level, 1: member of a top-level container).
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
    pub label: String,
    pub depth: u8,
}

/// The items of a file and the lines where a chunk may best start, with a priority
/// (2: a top-level item, 1: a member).
#[derive(Debug, Default)]
pub struct Outline {
    pub spans: Vec<Span>,
    pub breaks: BTreeMap<u32, u8>,
}

impl Outline {
    /// The item path at `line`, outermost first (`impl Queue > function lease`).
    pub fn path_at(&self, line: u32) -> Option<String> {
        let mut inside: Vec<&Span> = self
            .spans
            .iter()
            .filter(|s| s.start <= line && line <= s.end)
            .collect();
        if inside.is_empty() {
            // A chunk that opens on the blank lines right above an item: name the item
            // (not one further down: a module's own docs name no item).
            inside = self
                .spans
                .iter()
                .find(|s| s.start > line)
                .filter(|s| s.start - line <= 2)
                .into_iter()
                .collect();
        }
        inside.sort_by_key(|s| s.depth);
        (!inside.is_empty()).then(|| {
            inside
                .iter()
                .map(|s| s.label.as_str())
                .collect::<Vec<_>>()
                .join(" > ")
        })
    }
}

fn is_comment(n: &Node<'_>) -> bool {
    n.kind().contains("comment") || n.kind() == "attribute_item"
}

/// Rust's inner attributes and inner doc comments (`#![…]`, `//!`, `/*! … */`).
fn is_inner(n: &Node<'_>, src: &[u8]) -> bool {
    n.kind() == "inner_attribute_item"
        || (n.kind().contains("comment")
            && n.utf8_text(src)
                .is_ok_and(|t| t.starts_with("//!") || t.starts_with("/*!")))
}

/// The definition a wrapper stands for: Python's `decorated_definition` (the decorators are
/// not the item) and JavaScript's `export …` name what they wrap.
fn definition<'t>(n: &Node<'t>) -> Node<'t> {
    ["definition", "declaration"]
        .iter()
        .find_map(|f| n.child_by_field_name(f))
        .filter(|_| matches!(n.kind(), "decorated_definition" | "export_statement"))
        .unwrap_or(*n)
}

fn label(n: &Node<'_>, src: &[u8]) -> String {
    let n = definition(n);
    let kind = n.kind();
    let word = kind
        .trim_end_matches("_item")
        .trim_end_matches("_definition")
        .trim_end_matches("_declaration")
        .trim_end_matches("_statement")
        .replace('_', " ");
    let name = ["name", "type", "trait"]
        .iter()
        .find_map(|f| n.child_by_field_name(f))
        .or_else(|| {
            // Go `type …`: the name of the inner spec.
            let mut c = n.walk();
            let inner = n.named_children(&mut c).find(|c| !is_comment(c));
            inner.and_then(|i| {
                ["name", "type"]
                    .iter()
                    .find_map(|f| i.child_by_field_name(f))
            })
        })
        .and_then(|x| x.utf8_text(src).ok())
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "));
    match name {
        Some(name) if name.len() <= 80 => format!("{word} {name}"),
        _ => word,
    }
}

/// The body of a container whose members are worth breaking at.
fn members<'t>(n: &Node<'t>) -> Option<Node<'t>> {
    let n = &definition(n);
    let body = n.child_by_field_name("body").or_else(|| {
        let mut c = n.walk();
        n.named_children(&mut c).find(|c| {
            matches!(
                c.kind(),
                "declaration_list" | "class_body" | "field_declaration_list"
            )
        })
    })?;
    let container = matches!(
        n.kind(),
        "impl_item"
            | "trait_item"
            | "mod_item"
            | "class_definition"
            | "class_declaration"
            | "class"
    ) || matches!(body.kind(), "declaration_list" | "class_body");
    container.then_some(body)
}

fn walk_items(parent: &Node<'_>, src: &[u8], depth: u8, out: &mut Outline) {
    let mut cursor = parent.walk();
    let children: Vec<Node<'_>> = parent.named_children(&mut cursor).collect();
    let mut lead: Option<u32> = None;
    let mut prev_end: Option<u32> = None;
    for n in &children {
        let (start, end) = (
            n.start_position().row as u32 + 1,
            n.end_position().row as u32 + 1,
        );
        if is_inner(n, src) {
            continue; // `#![…]` and `//!` belong to the enclosing module, not to the next item
        }
        if is_comment(n) {
            // Comments and attributes directly above an item belong to it.
            let adjacent = prev_end.is_some_and(|e| e + 1 >= start) && lead.is_some();
            if !adjacent {
                lead = Some(start);
            }
            prev_end = Some(end);
            continue;
        }
        let attached = lead.filter(|_| prev_end.is_some_and(|e| e + 1 >= start));
        let from = attached.unwrap_or(start);
        lead = None;
        prev_end = Some(end);
        let priority = if depth == 0 { 2 } else { 1 };
        let slot = out.breaks.entry(from).or_insert(priority);
        *slot = (*slot).max(priority);
        if end > start || depth == 0 {
            out.spans.push(Span {
                start: from,
                end,
                label: label(n, src),
                depth,
            });
        }
        if depth == 0
            && let Some(body) = members(n)
        {
            walk_items(&body, src, 1, out);
        }
    }
}

/// The outline of `text`, or None when there is no grammar for the language.
pub fn outline(language: &str, text: &str) -> Option<Outline> {
    let tree = parse(language, text)?;
    let mut out = Outline::default();
    walk_items(&tree.root_node(), text.as_bytes(), 0, &mut out);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUST: &str = "use std::fmt;\n\n/// A queue.\n#[derive(Debug)]\npub struct Queue {\n    jobs: Vec<u32>,\n}\n\nimpl Queue {\n    /// Leases a job.\n    pub fn lease(&mut self) -> Option<u32> {\n        self.jobs.pop()\n    }\n\n    fn len(&self) -> usize {\n        self.jobs.len()\n    }\n}\n";

    #[test]
    fn rust_items_start_at_their_doc_comments_and_members_are_breaks() {
        let o = outline("rust", RUST).unwrap();
        assert_eq!(
            o.breaks.get(&3),
            Some(&2),
            "struct Queue with its doc and derive: {o:?}"
        );
        assert_eq!(o.breaks.get(&9), Some(&2), "impl Queue");
        assert_eq!(o.breaks.get(&10), Some(&1), "fn lease with its doc");
        assert_eq!(o.breaks.get(&15), Some(&1), "fn len");
        assert_eq!(
            o.path_at(12).as_deref(),
            Some("impl Queue > function lease")
        );
        assert_eq!(o.path_at(5).as_deref(), Some("struct Queue"));
    }

    #[test]
    fn python_classes_and_methods() {
        let py = "import os\n\n\nclass Store:\n    \"\"\"Keeps things.\"\"\"\n\n    def get(self, k):\n        return k\n\n    @property\n    def size(self):\n        return 0\n\n\ndef main():\n    pass\n";
        let o = outline("python", py).unwrap();
        assert_eq!(o.breaks.get(&4), Some(&2));
        assert_eq!(o.breaks.get(&7), Some(&1));
        assert_eq!(
            o.breaks.get(&10),
            Some(&1),
            "the decorator starts the method"
        );
        assert_eq!(o.breaks.get(&15), Some(&2));
        assert_eq!(o.path_at(8).as_deref(), Some("class Store > function get"));
        assert_eq!(
            o.path_at(12).as_deref(),
            Some("class Store > function size"),
            "a decorated method is named by its definition, not its decorator"
        );
        let decorated = "@dataclass\nclass Point:\n    x: int\n\n    @staticmethod\n    def origin():\n        return Point(0)\n";
        let o = outline("python", decorated).unwrap();
        assert_eq!(
            o.path_at(6).as_deref(),
            Some("class Point > function origin")
        );
    }

    #[test]
    fn wrappers_are_named_by_what_they_wrap() {
        let js = "export function serve(port) {\n  return port;\n}\n";
        let o = outline("javascript", js).unwrap();
        assert_eq!(o.path_at(2).as_deref(), Some("function serve"));
        let js = "@register\nclass Jobs {\n  @bound\n  handle(job) {\n    return job;\n  }\n}\n";
        let o = outline("javascript", js).unwrap();
        assert_eq!(
            o.path_at(5).as_deref(),
            Some("class Jobs > method handle"),
            "JavaScript decorators: {o:?}"
        );
        let rust = "#![doc = \"crate\"]\n\n#[inline]\nfn fast() {\n    todo!()\n}\n";
        let o = outline("rust", rust).unwrap();
        assert_eq!(o.path_at(5).as_deref(), Some("function fast"));
        assert!(
            o.spans.iter().all(|s| !s.label.contains("attribute")),
            "{o:?}"
        );
    }

    #[test]
    fn a_crates_own_docs_name_no_item() {
        let rust = "//! The crate.\n//!\n//! Long docs\n//! go on.\n\n#[macro_use]\nmod macros;\n\n/*! More. */\n\n\nfn run() {\n    todo!()\n}\n";
        let o = outline("rust", rust).unwrap();
        assert_eq!(o.path_at(1), None, "{o:?}");
        assert_eq!(o.path_at(3), None, "{o:?}");
        assert_eq!(o.path_at(5).as_deref(), Some("mod macros"));
        assert_eq!(o.path_at(6).as_deref(), Some("mod macros"));
        assert_eq!(o.breaks.get(&6), Some(&2), "the attribute starts the item");
        assert_eq!(o.path_at(9), None, "{o:?}");
        assert_eq!(o.path_at(10).as_deref(), Some("function run"));
        assert_eq!(o.path_at(13).as_deref(), Some("function run"));
    }

    #[test]
    fn syntax_errors_are_located() {
        assert_eq!(parses("rust", RUST), Some(Ok(())));
        assert_eq!(
            parses("rust", "fn main() {\n    let x = ;\n}\n"),
            Some(Err((2, 11)))
        );
        assert!(matches!(
            parses("python", "def f(:\n    pass\n"),
            Some(Err((1, _)))
        ));
        assert_eq!(parses("cobol", "anything"), None);
        assert!(supported("go") && supported("javascript") && !supported("markdown"));
    }
}
