// One document: the reader (a version's markdown, its sources, model and cost), the editor
// with preview (saving a new version on top of the latest), the versions with restore, a
// side-by-side diff of any two, and publish.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useParams, useSearchParams } from "react-router";
import { api, must } from "../api/client";
import { atLeast, useRole } from "../auth";
import { Markdown } from "../components/Markdown";
import { Button, Card, ErrorLine, Field, Page, Status, When, input } from "../components/ui";

type Tab = "read" | "edit" | "versions" | "diff";

export function DocumentView() {
  const { id = "" } = useParams();
  const role = useRole();
  const qc = useQueryClient();
  const [params, setParams] = useSearchParams();
  const tab = (params.get("tab") ?? "read") as Tab;
  const doc = useQuery({
    queryKey: ["document", id],
    queryFn: () => must(api.GET("/api/v1/documents/{id}", { params: { path: { id } } })),
  });
  const n = Number(params.get("v")) || doc.data?.published_version || doc.data?.latest_version || 0;
  const version = useQuery({
    queryKey: ["document", id, "version", n],
    queryFn: () => must(api.GET("/api/v1/documents/{id}/versions/{n}", { params: { path: { id, n } } })),
    enabled: n > 0,
  });
  const publish = useMutation({
    mutationFn: (v: number) => must(api.POST("/api/v1/documents/{id}/publish", { params: { path: { id } }, body: { version: v } })),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["document", id] }),
  });
  const go = (t: Tab, extra: Record<string, string> = {}) => setParams({ tab: t, ...extra });
  const d = doc.data;
  const writer = atLeast(role, "member");
  const meta = (version.data?.metadata ?? {}) as Record<string, unknown>;
  const sources = Array.isArray(meta.sources) ? (meta.sources as unknown[]).map(String) : [];
  const generated = (meta.generated_by ?? {}) as Record<string, unknown>;

  return (
    <Page
      title={d?.title ?? "Document"}
      actions={
        d && (
          <div className="flex flex-wrap items-center gap-2">
            <Status value={d.status} />
            {writer && n > 0 && d.published_version !== n && (
              <Button onClick={() => publish.mutate(n)} disabled={publish.isPending}>
                Publish v{n}
              </Button>
            )}
          </div>
        )
      }
    >
      <ErrorLine error={doc.error ?? version.error ?? publish.error} />
      <div role="tablist" aria-label="Document views" className="mb-4 flex flex-wrap gap-2">
        {(["read", ...(writer ? ["edit"] : []), "versions", "diff"] as Tab[]).map((t) => (
          <Button key={t} role="tab" aria-selected={tab === t} tone={tab === t ? "primary" : "secondary"} onClick={() => go(t)}>
            {t === "read" ? "Read" : t === "edit" ? "Edit" : t === "versions" ? "Versions" : "Compare"}
          </Button>
        ))}
      </div>
      {tab === "read" && version.data && (
        <div className="grid grid-cols-1 gap-4 lg:grid-cols-[minmax(0,1fr)_18rem]">
          <Card>
            <p className="mb-3 text-xs text-slate-600">
              Version {version.data.n}
              {d?.published_version === version.data.n ? " (published)" : ""} · <When at={version.data.created_at} />
            </p>
            <article data-testid="document-text">
              <Markdown text={version.data.text} />
            </article>
          </Card>
          <aside className="space-y-4">
            <Card title="Provenance">
              <dl className="space-y-1 text-sm">
                <dt className="font-medium text-slate-600">Written by</dt>
                <dd>{typeof generated.model === "string" ? `${String(generated.agent ?? "agent")} · ${generated.model}` : JSON.stringify(version.data.author)}</dd>
                {typeof meta.cost_usd === "number" && (
                  <>
                    <dt className="font-medium text-slate-600">Cost</dt>
                    <dd>${meta.cost_usd.toFixed(5)}</dd>
                  </>
                )}
                {typeof meta.task_id === "string" && (
                  <>
                    <dt className="font-medium text-slate-600">Task</dt>
                    <dd>
                      <Link to={`/tasks/${meta.task_id}`} className="font-mono text-xs underline">
                        {meta.task_id.slice(0, 13)}…
                      </Link>
                    </dd>
                  </>
                )}
                {typeof meta.trace_id === "string" && (
                  <>
                    <dt className="font-medium text-slate-600">Trace</dt>
                    <dd className="break-all font-mono text-xs">{meta.trace_id}</dd>
                  </>
                )}
              </dl>
            </Card>
            {sources.length > 0 && (
              <Card title="Sources">
                <ul className="space-y-1 text-sm" data-testid="sources">
                  {sources.map((s) => (
                    <li key={s}>
                      <Link to={`/memory?q=${encodeURIComponent(s.replace(/:\d+(-\d+)?$/, ""))}`} className="break-all font-mono text-xs underline">
                        {s}
                      </Link>
                    </li>
                  ))}
                </ul>
              </Card>
            )}
          </aside>
        </div>
      )}
      {tab === "edit" && writer && d && version.data && (
        <Editor key={`${d.latest_version}`} id={id} base={d.latest_version} title={d.title} text={version.data.text} onSaved={(v) => go("read", { v: String(v) })} />
      )}
      {tab === "versions" && <Versions id={id} published={d?.published_version ?? null} writer={writer} onOpen={(v) => go("read", { v: String(v) })} />}
      {tab === "diff" && d && <Compare id={id} latest={d.latest_version} />}
    </Page>
  );
}

function Editor({ id, base, title, text, onSaved }: { id: string; base: number; title: string; text: string; onSaved: (v: number) => void }) {
  const qc = useQueryClient();
  const [draft, setDraft] = useState(text);
  const [name, setName] = useState(title);
  const save = useMutation({
    mutationFn: () =>
      must(api.POST("/api/v1/documents/{id}/versions", { params: { path: { id } }, body: { base_version: base, title: name, text: draft } })),
    onSuccess: (r) => {
      void qc.invalidateQueries({ queryKey: ["document", id] });
      onSaved(r.version.n);
    },
  });
  return (
    <div className="space-y-3">
      <Field label="Title">
        <input className={input} value={name} maxLength={300} onChange={(e) => setName(e.target.value)} />
      </Field>
      <div className="grid grid-cols-1 gap-4 lg:grid-cols-2">
        <Field label={`Markdown (on top of version ${base})`}>
          <textarea className={`${input} min-h-96 font-mono`} value={draft} onChange={(e) => setDraft(e.target.value)} data-testid="editor" />
        </Field>
        <div>
          <p className="mb-1 text-sm font-medium text-slate-800">Preview</p>
          <Card>
            <Markdown text={draft} />
          </Card>
        </div>
      </div>
      <ErrorLine error={save.error} />
      <Button onClick={() => save.mutate()} disabled={save.isPending || draft === text}>
        Save as a new version
      </Button>
    </div>
  );
}

function Versions({ id, published, writer, onOpen }: { id: string; published: number | null; writer: boolean; onOpen: (v: number) => void }) {
  const qc = useQueryClient();
  const list = useQuery({
    queryKey: ["document", id, "versions"],
    queryFn: () => must(api.GET("/api/v1/documents/{id}/versions", { params: { path: { id } } })),
  });
  const restore = useMutation({
    mutationFn: (version: number) => must(api.POST("/api/v1/documents/{id}/restore", { params: { path: { id } }, body: { version } })),
    onSuccess: (r) => {
      void qc.invalidateQueries({ queryKey: ["document", id] });
      onOpen(r.version.n);
    },
  });
  return (
    <Card>
      <ErrorLine error={list.error ?? restore.error} />
      <ol className="divide-y divide-slate-100 text-sm" data-testid="versions">
        {list.data?.items.map((v) => (
          <li key={v.n} className="flex flex-wrap items-center gap-2 py-2">
            <button type="button" className="font-medium underline" onClick={() => onOpen(v.n)}>
              Version {v.n}
            </button>
            {published === v.n && <Status value="published" />}
            <span className="text-slate-700">{v.title}</span>
            <span className="text-xs text-slate-600">
              <When at={v.created_at} />
            </span>
            {writer && (
              <Button tone="secondary" className="ml-auto" onClick={() => restore.mutate(v.n)} disabled={restore.isPending}>
                Restore
              </Button>
            )}
          </li>
        ))}
      </ol>
    </Card>
  );
}

/** Two versions side by side: removed lines on the left, added on the right. */
function Compare({ id, latest }: { id: string; latest: number }) {
  const [from, setFrom] = useState(Math.max(1, latest - 1));
  const [to, setTo] = useState(latest);
  const diff = useQuery({
    queryKey: ["document", id, "diff", from, to],
    queryFn: () => must(api.GET("/api/v1/documents/{id}/diff", { params: { path: { id }, query: { from, to } } })),
  });
  const rows = sideBySide(diff.data?.diff ?? "");
  return (
    <Card>
      <div className="mb-3 flex flex-wrap gap-3">
        <Field label="From">
          <VersionSelect latest={latest} value={from} onChange={setFrom} />
        </Field>
        <Field label="To">
          <VersionSelect latest={latest} value={to} onChange={setTo} />
        </Field>
      </div>
      <ErrorLine error={diff.error} />
      <div className="overflow-x-auto">
        <table className="w-full table-fixed font-mono text-xs" data-testid="side-by-side">
          <caption className="sr-only">
            Version {from} against version {to}
          </caption>
          <thead>
            <tr>
              <th scope="col" className="w-1/2 p-1 text-left">v{from}</th>
              <th scope="col" className="w-1/2 p-1 text-left">v{to}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map(([l, r], i) => (
              <tr key={i}>
                <td className={`whitespace-pre-wrap break-words p-1 align-top ${l.kind === "-" ? "bg-red-50 text-red-900" : ""}`}>{l.text}</td>
                <td className={`whitespace-pre-wrap break-words p-1 align-top ${r.kind === "+" ? "bg-green-50 text-green-900" : ""}`}>{r.text}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Card>
  );
}

/** Versions 1 to `latest`. */
function VersionSelect({ latest, value, onChange, ...labelled }: { latest: number; value: number; onChange: (v: number) => void; id?: string }) {
  return (
    <select {...labelled} className={input} value={value} onChange={(e) => onChange(Number(e.target.value))}>
      {Array.from({ length: latest }, (_, i) => i + 1).map((v) => (
        <option key={v} value={v}>
          v{v}
        </option>
      ))}
    </select>
  );
}

interface Cell {
  kind: " " | "-" | "+";
  text: string;
}

/** Pairs a unified diff's lines into rows: context on both sides, a run of removals beside
 *  the run of additions that follows it. */
export function sideBySide(unified: string): [Cell, Cell][] {
  const rows: [Cell, Cell][] = [];
  let minus: string[] = [];
  let plus: string[] = [];
  const flush = () => {
    for (let i = 0; i < Math.max(minus.length, plus.length); i++) {
      rows.push([
        { kind: i < minus.length ? "-" : " ", text: minus[i] ?? "" },
        { kind: i < plus.length ? "+" : " ", text: plus[i] ?? "" },
      ]);
    }
    minus = [];
    plus = [];
  };
  for (const line of unified.split("\n")) {
    if (line.startsWith("---") || line.startsWith("+++") || line.startsWith("@@")) {
      flush();
      continue;
    }
    if (line.startsWith("-")) minus.push(line.slice(1));
    else if (line.startsWith("+")) plus.push(line.slice(1));
    else {
      flush();
      if (line.startsWith(" ")) rows.push([{ kind: " ", text: line.slice(1) }, { kind: " ", text: line.slice(1) }]);
    }
  }
  flush();
  return rows;
}
