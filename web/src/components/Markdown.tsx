// Markdown as the documents are written (GitHub flavour), with syntax-highlighted code.
// react-markdown builds React elements, never raw HTML, so a document cannot inject markup.
import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import json from "highlight.js/lib/languages/json";
import python from "highlight.js/lib/languages/python";
import rust from "highlight.js/lib/languages/rust";
import typescript from "highlight.js/lib/languages/typescript";
import yaml from "highlight.js/lib/languages/yaml";
import type { ReactNode } from "react";
import ReactMarkdown from "react-markdown";
import remarkGfm from "remark-gfm";

for (const [name, lang] of Object.entries({ bash, json, python, rust, typescript, yaml })) hljs.registerLanguage(name, lang);
hljs.registerAliases(["sh", "shell"], { languageName: "bash" });
hljs.registerAliases(["ts", "tsx", "js", "javascript"], { languageName: "typescript" });
hljs.registerAliases(["py"], { languageName: "python" });
hljs.registerAliases(["rs"], { languageName: "rust" });

/** The highlighted tokens of `code` as React spans (no HTML strings). */
function highlight(code: string, language: string): ReactNode {
  if (!hljs.getLanguage(language)) return code;
  const html = hljs.highlight(code, { language, ignoreIllegals: true }).value;
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
            return language ? <code className={`hljs ${className ?? ""}`}>{highlight(code.replace(/\n$/, ""), language)}</code> : <code>{children}</code>;
          },
        }}
      >
        {text}
      </ReactMarkdown>
    </div>
  );
}
