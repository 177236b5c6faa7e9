// Memory: the tenant's collections; files added by drag and drop; a server folder indexed as
// a task with live progress; and a search playground (lexical, dense or hybrid, with scores
// and citations).
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type DragEvent } from "react";
import { Link, useSearchParams } from "react-router";
import { api, must } from "../api/client";
import type { components } from "../api/schema";
import { atLeast, useRole } from "../auth";
import { Button, Card, ErrorLine, Field, Page, input } from "../components/ui";
import { useEvents } from "../live";
import { useCollections } from "./Ask";

type Mode = components["schemas"]["SearchMode"];
/** Larger files are refused here rather than by the server's body limit. */
const MAX_FILE_BYTES = 1_000_000;

export function Memory() {
  const role = useRole();
  const collections = useCollections();
  const [params, setParams] = useSearchParams();
  const selected = params.get("collection") || collections.data?.items[0]?.id || "";
  return (
    <Page title="Memory">
      <div className="grid grid-cols-1 gap-4 lg:grid-cols-[16rem_minmax(0,1fr)]">
        <Card title="Collections">
          <ul className="space-y-1 text-sm" data-testid="collections">
            {collections.data?.items.map((c) => (
              <li key={c.id}>
                <button
                  type="button"
                  aria-current={c.id === selected}
                  className={`w-full rounded px-2 py-1 text-left ${c.id === selected ? "bg-slate-900 text-white" : "hover:bg-slate-100"}`}
                  onClick={() => setParams({ collection: c.id })}
                >
                  {c.name}
                </button>
              </li>
            ))}
          </ul>
          {atLeast(role, "admin") && <NewCollection onCreated={(id) => setParams({ collection: id })} />}
        </Card>
        <div className="space-y-4">
          {selected && atLeast(role, "member") && <Upload collection={selected} />}
          {selected && atLeast(role, "member") && <IndexFolder collection={selected} />}
          <Playground collection={selected} initial={params.get("q") ?? ""} />
        </div>
      </div>
    </Page>
  );
}

function NewCollection({ onCreated }: { onCreated: (id: string) => void }) {
  const qc = useQueryClient();
  const create = useMutation({
    mutationFn: (name: string) => must(api.POST("/api/v1/memory/collections", { body: { name } })),
    onSuccess: (c) => {
      void qc.invalidateQueries({ queryKey: ["collections"] });
      onCreated(c.id);
    },
  });
  return (
    <form
      className="mt-3 space-y-2"
      onSubmit={(e) => {
        e.preventDefault();
        const form = e.currentTarget;
        const name = String(new FormData(form).get("name") ?? "").trim();
        if (name) create.mutate(name, { onSuccess: () => form.reset() });
      }}
    >
      <Field label="New collection">
        <input name="name" required maxLength={200} className={input} />
      </Field>
      <Button type="submit" tone="secondary" disabled={create.isPending}>
        Create
      </Button>
      <ErrorLine error={create.error} />
    </form>
  );
}

function Upload({ collection }: { collection: string }) {
  const [over, setOver] = useState(false);
  const [log, setLog] = useState<string[]>([]);
  const add = useMutation({
    mutationFn: async (files: File[]) => {
      for (const f of files) {
        if (f.size > MAX_FILE_BYTES) {
          setLog((l) => [...l, `${f.name}: larger than 1 MB, skipped`]);
          continue;
        }
        await must(
          api.POST("/api/v1/memory/collections/{id}/items", {
            params: { path: { id: collection } },
            body: { source: f.webkitRelativePath || f.name, text: await f.text() },
          }),
        );
        setLog((l) => [...l, `${f.name}: added`]);
      }
    },
  });
  const drop = (e: DragEvent) => {
    e.preventDefault();
    setOver(false);
    add.mutate(Array.from(e.dataTransfer.files));
  };
  return (
    <Card title="Add files">
      <div
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={drop}
        className={`rounded-md border-2 border-dashed p-6 text-center text-sm ${over ? "border-slate-900 bg-slate-100" : "border-slate-300"}`}
      >
        <p className="mb-2">Drop text files here, or</p>
        <label className="inline-flex min-h-10 cursor-pointer items-center rounded-md bg-slate-900 px-4 font-medium text-white focus-within:outline-2">
          choose files
          <input type="file" multiple className="sr-only" onChange={(e) => add.mutate(Array.from(e.target.files ?? []))} />
        </label>
      </div>
      <ErrorLine error={add.error} />
      {log.length > 0 && (
        <ul role="status" className="mt-2 text-xs text-slate-700">
          {log.map((l, i) => (
            <li key={i}>{l}</li>
          ))}
        </ul>
      )}
    </Card>
  );
}

/** Indexes a directory on the server (under its index_roots) as an `index` task. */
function IndexFolder({ collection }: { collection: string }) {
  const collections = useCollections();
  const name = collections.data?.items.find((c) => c.id === collection)?.name ?? "";
  const [task, setTask] = useState<string | null>(null);
  const [progress, setProgress] = useState<{ pass: string; done: number; total: number; status: string }>({ pass: "files", done: 0, total: 0, status: "" });
  const start = useMutation({
    mutationFn: (path: string) => must(api.POST("/api/v1/tasks", { body: { kind: "index", input: { path, collection: name } } })),
    onSuccess: (t) => {
      setProgress({ pass: "files", done: 0, total: 0, status: "queued" });
      setTask(t.id);
    },
  });
  useEvents(task ? `/api/v1/tasks/${task}/events` : null, (e) => {
    const d = (e.data ?? {}) as { pass?: string; done?: number; total?: number };
    if (e.kind === "progress") setProgress((p) => ({ ...p, pass: d.pass ?? p.pass, done: d.done ?? p.done, total: d.total ?? p.total }));
    else setProgress((p) => ({ ...p, status: e.kind }));
  });
  return (
    <Card title="Index a server folder">
      <form
        className="flex flex-wrap items-end gap-2"
        onSubmit={(e) => {
          e.preventDefault();
          const path = String(new FormData(e.currentTarget).get("path") ?? "").trim();
          if (path) start.mutate(path);
        }}
      >
        <Field label="Path on the server" hint="Under one of the server's index_roots.">
          <input name="path" required maxLength={4096} className={`${input} min-w-64`} placeholder="/srv/repos/payments" />
        </Field>
        <Button type="submit" disabled={start.isPending}>
          Index
        </Button>
      </form>
      <ErrorLine error={start.error} />
      {task && (
        <div className="mt-3 text-sm" data-testid="index-progress">
          <progress className="w-full" max={progress.total || 1} value={progress.done} aria-label="Indexing progress" />
          <p>
            {progress.status} · {progress.done} / {progress.total} {progress.pass === "vectors" ? "chunks with vectors (searchable now; meaning search fills in)" : "files"} ·{" "}
            <Link to={`/tasks/${task}`} className="underline">
              task
            </Link>
          </p>
        </div>
      )}
    </Card>
  );
}

function Playground({ collection, initial }: { collection: string; initial: string }) {
  const [mode, setMode] = useState<Mode>("hybrid");
  const search = useMutation({
    mutationFn: (query: string) => must(api.POST("/api/v1/memory/search", { body: { query, collection: collection || null, k: 10, mode } })),
  });
  return (
    <Card title="Search">
      <form
        className="flex flex-wrap items-end gap-2"
        onSubmit={(e) => {
          e.preventDefault();
          const q = String(new FormData(e.currentTarget).get("q") ?? "").trim();
          if (q) search.mutate(q);
        }}
      >
        <Field label="Query">
          <input name="q" type="search" defaultValue={initial} required maxLength={1000} className={`${input} min-w-64`} />
        </Field>
        <Field label="Mode">
          <select className={input} value={mode} onChange={(e) => setMode(e.target.value as Mode)}>
            <option value="hybrid">hybrid</option>
            <option value="lexical">lexical</option>
            <option value="dense">dense</option>
          </select>
        </Field>
        <Button type="submit" disabled={search.isPending}>
          Search
        </Button>
      </form>
      <ErrorLine error={search.error} />
      {search.data?.warning && <p className="mt-2 text-sm text-amber-900">{search.data.warning}</p>}
      <ol className="mt-3 space-y-3" data-testid="hits">
        {search.data?.hits.map((h) => (
          <li key={`${h.chunk_id}`} className="rounded border border-slate-200 p-2">
            <p className="flex flex-wrap justify-between gap-2 text-xs">
              <span className="font-mono">{h.citation}</span>
              <span>score {h.score.toFixed(4)}</span>
            </p>
            <pre tabIndex={0} className="mt-1 max-h-48 overflow-auto whitespace-pre-wrap text-xs">{h.text}</pre>
          </li>
        ))}
      </ol>
    </Card>
  );
}
