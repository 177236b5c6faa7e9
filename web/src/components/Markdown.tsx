// Markdown as the documents are written (GitHub flavour), with syntax-highlighted code.
// react-markdown builds React elements, never raw HTML, so a document cannot inject markup.
import { useEffect, useState, type ReactNode } from "react";
import ReactMarkdown from "react-markdown";
import remarkGfm from "remark-gfm";

type Highlighter = (code: string, language: string) => string | null;
let loading: Promise<Highlighter> | null = null;

/** highlight.js, fetched once after the first document renders. */
function useHighlighter(): Highlighter | null {
  const [h, setH] = useState<Highlighter | null>(null);
  useEffect(() => {
    let live = true;
    loading ??= import("./highlight").then((m) => m.highlightHtml);
    void loading.then((f) => live && setH(() => f));
    return () => {
      live = false;
    };
  }, []);
  return h;
}

/** The highlighted tokens of `code` as React spans (no HTML strings reach the page). */
function highlight(h: Highlighter | null, code: string, language: string): ReactNode {
  const html = h?.(code, language);
  if (!html) return code;
  const doc = new DOMParser().parseFromString(`<pre>${html}</pre>`, "text/html");
  const walk = (node: Node, key: number): ReactNode => {
    if (node.nodeType === Node.TEXT_NODE) return node.textContent;
    const el = node as Element;
    return (
      <span key={key} className={el.getAttribute("class") ?? undefined}>
        {Array.from(el.childNodes, walk)}
      </span>
    );
  };
  return Array.from(doc.body.firstChild?.childNodes ?? [], walk);
}

export function Markdown({ text }: { text: string }) {
  const h = useHighlighter();
  return (
    <div className="prose-doc">
      <ReactMarkdown
        remarkPlugins={[remarkGfm]}
        components={{
          // Scrollable, so reachable by keyboard.
          pre: ({ children }) => <pre tabIndex={0}>{children}</pre>,
          code({ className, children }) {
            const language = /language-([\w-]+)/.exec(className ?? "")?.[1];
            const code = String(children);
            return language ? <code className={`hljs ${className ?? ""}`}>{highlight(h, code.replace(/\n$/, ""), language)}</code> : <code>{children}</code>;
          },
        }}
      >
        {text}
      </ReactMarkdown>
    </div>
  );
}
