// One task: status, trace id and cost; its events as they happen; for agent runs the
// graph's nodes with their status, the streamed tokens, the result (a document, a diff)
// and the checkpoints of its thread.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { lazy, Suspense, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { api, must, type Task, type TaskEvent } from "../api/client";
import { atLeast, useMe } from "../auth";
import { Button, Card, ErrorLine, Page, Status, When } from "../components/ui";
import { LiveBadge, useEvents } from "../live";
import { describe } from "./Home";

const Checkpoints = lazy(() => import("../components/Checkpoints"));
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

interface Node {
  name: string;
  state: "running" | "done" | "waiting";
  /** Wall time in ms, when the node reported it (`{"timing": name, "ms": …}`). */
  ms?: number;
}

const NODE_TONE: Record<Node["state"], string> = {
  running: "border-blue-600 bg-blue-50",
  done: "border-green-600 bg-green-50",
  waiting: "border-amber-600 bg-amber-50",
};

/** The graph's nodes in the order they first appeared, and the tokens streamed so far. */
export function runView(events: TaskEvent[], waitingOn: string[] = []): { nodes: Node[]; tokens: string } {
  const nodes: Node[] = [];
  let tokens = "";
  const touch = (name: string, state: Node["state"]) => {
    const n = nodes.find((x) => x.name === name);
    if (n) n.state = state === "done" ? "done" : n.state;
    else nodes.push({ name, state });
  };
  for (const e of events) {
    if (e.kind !== "progress" || !e.data || typeof e.data !== "object") continue;
    const { mode, data } = e.data as { mode?: string; data?: unknown };
    if (mode === "custom" && data && typeof data === "object" && "timing" in data) {
      // Sent as the node returns, before the step's `updates`.
      const { timing, ms } = data as { timing: unknown; ms?: unknown };
      touch(String(timing), "running");
      const n = nodes.find((x) => x.name === String(timing));
      if (n && typeof ms === "number") n.ms = (n.ms ?? 0) + ms;
    } else if (mode === "custom" && data && typeof data === "object" && "step" in data) {
      touch(String((data as { step: unknown }).step), "running");
    } else if (mode === "updates" && data && typeof data === "object") {
      for (const name of Object.keys(data)) if (!name.startsWith("__")) touch(name, "done");
    } else if (mode === "messages" && data && typeof data === "object") {
      const { node, content } = data as { node?: unknown; content?: unknown };
      if (typeof node === "string") touch(node, "running");
      if (typeof content === "string") tokens += content;
    }
  }
  // The nodes an interrupted run waits in (an approval): they did not finish.
  for (const name of waitingOn) {
    const n = nodes.find((x) => x.name === name);
    if (n) n.state = "waiting";
    else nodes.push({ name, state: "waiting" });
  }
  return { nodes, tokens };
}

/** The events as a timeline: runs of progress events with the same description (a token
 *  stream, say) folded into one line with a count. */
export function timeline(events: TaskEvent[]): { first: TaskEvent; count: number; label: string }[] {
  const out: { first: TaskEvent; count: number; label: string }[] = [];
  for (const e of events) {
    const mode = (e.data as { mode?: unknown } | null)?.mode;
    const label = describe(e.data) || (mode === "messages" ? "tokens" : typeof mode === "string" ? mode : "");
    const prev = out.at(-1);
    if (prev && e.kind === "progress" && prev.first.kind === "progress" && prev.label === label) prev.count += 1;
    else out.push({ first: e, count: 1, label });
  }
  return out;
}

/** What a thread shows that its task's stored result may predate. */
const THREAD_KEYS = ["status", "document", "diff", "plan", "explanation", "files", "model"];

/** A task's result as it stands now: once the approval it waited for is decided, the
 *  thread's values and status instead of those stored when the run stopped. */
export function afterDecision(
  result: Record<string, unknown>,
  thread: { status: string; values: Record<string, unknown> } | undefined,
): Record<string, unknown> {
  if (!thread || thread.status === "interrupted") return result;
  const now: Record<string, unknown> = { ...result, run_status: thread.status === "idle" ? "success" : thread.status, decided: true };
  for (const k of THREAD_KEYS) if (k in thread.values) now[k] = thread.values[k];
  return now;
}

export function TaskDetail() {
  const { id = "" } = useParams();
  const qc = useQueryClient();
  const me = useMe().data;
  const navigate = useNavigate();
  const [events, setEvents] = useState<TaskEvent[]>([]);
  const task = useQuery({
    queryKey: ["task", id],
    queryFn: () => must(api.GET("/api/v1/tasks/{id}", { params: { path: { id } } })),
  });
  const live = useEvents(`/api/v1/tasks/${encodeURIComponent(id)}/events`, (e) => {
    setEvents((prev) => [...prev, e]);
    if (e.kind !== "progress") void qc.invalidateQueries({ queryKey: ["task", id] });
  });
  const cancel = useMutation({
    mutationFn: () => must(api.POST("/api/v1/tasks/{id}/cancel", { params: { path: { id } } })),
    onSuccess: (t) => qc.setQueryData(["task", id], t),
  });
  const again = useMutation({
    mutationFn: (t: Task) =>
      must(api.POST("/api/v1/tasks", { body: { kind: t.kind, input: t.input as Record<string, unknown>, project_id: t.project_id ?? undefined } })),
    onSuccess: (t) => navigate(`/tasks/${t.id}`),
  });
  const t = task.data;
  const role = me?.current_role;
  const mayCancel = t && !TERMINAL.has(t.status) && (atLeast(role, "admin") || (atLeast(role, "member") && t.created_by === me?.user.id));
  const stored = (t?.result ?? null) as Record<string, unknown> | null;
  // A run that stopped for an approval goes on in the thread once someone decides: its
  // thread says how it stands now.
  const threadId = stored?.run_status === "interrupted" && typeof stored.thread_id === "string" ? stored.thread_id : null;
  const thread = useQuery({
    queryKey: ["thread", threadId],
    queryFn: () => must(api.GET("/threads/{id}", { params: { path: { id: threadId ?? "" } } })),
    enabled: threadId !== null,
    refetchInterval: (q) => (q.state.data?.status === "interrupted" || q.state.data?.status === "busy" ? 2_000 : false),
  });
  const result = stored && afterDecision(stored, thread.data);
  const waitingOn = result?.run_status === "interrupted" && Array.isArray(result.waiting_on) ? result.waiting_on.map(String) : [];
  const { nodes, tokens } = runView(events, waitingOn);

  return (
    <Page
      title={t ? `${t.kind} task` : "Task"}
      actions={
        <div className="flex items-center gap-2">
          <LiveBadge state={live} />
          {mayCancel && (
            <Button tone="danger" onClick={() => cancel.mutate()} disabled={cancel.isPending}>
              Cancel
            </Button>
          )}
          {t && TERMINAL.has(t.status) && atLeast(role, "member") && (
            <Button tone="secondary" onClick={() => again.mutate(t)} disabled={again.isPending}>
              Run again
            </Button>
          )}
        </div>
      }
    >
      <ErrorLine error={task.error ?? cancel.error ?? again.error} />
      {t && (
        <Card className="mb-4">
          <dl className="grid grid-cols-1 gap-x-6 gap-y-2 text-sm sm:grid-cols-[max-content_1fr]">
            <dt className="font-medium text-slate-600">Status</dt>
            <dd data-testid="task-status">
              <Status value={t.status} />
            </dd>
            <dt className="font-medium text-slate-600">Task id</dt>
            <dd className="break-all font-mono text-xs">{t.id}</dd>
            <dt className="font-medium text-slate-600">Trace id</dt>
            <dd className="break-all font-mono text-xs">{t.trace_id}</dd>
            <dt className="font-medium text-slate-600">Created</dt>
            <dd>
              <When at={t.created_at} />
            </dd>
            {typeof result?.model === "string" && (
              <>
                <dt className="font-medium text-slate-600">Model</dt>
                <dd>{result.model}</dd>
              </>
            )}
            {result?.usage !== undefined && (
              <>
                <dt className="font-medium text-slate-600">Cost</dt>
                <dd>{JSON.stringify(result.usage)}</dd>
              </>
            )}
            {t.error && (
              <>
                <dt className="font-medium text-slate-600">Error</dt>
                <dd className="text-red-900">{t.error}</dd>
              </>
            )}
          </dl>
        </Card>
      )}
      <div className="grid grid-cols-1 gap-4 lg:grid-cols-2">
        {nodes.length > 0 && (
          <Card title="Graph">
            <ol className="flex flex-wrap items-center gap-2" data-testid="nodes">
              {nodes.map((n, i) => (
                <li key={n.name} className="flex items-center gap-2">
                  {i > 0 && <span aria-hidden="true">→</span>}
                  <span
                    className={`rounded-md border px-2 py-1 text-sm ${NODE_TONE[n.state]}`}
                  >
                    {n.name}
                    {n.ms !== undefined && <span className="ml-1 text-xs text-gray-600">{n.ms < 1000 ? `${Math.round(n.ms)} ms` : `${(n.ms / 1000).toFixed(1)} s`}</span>}
                    <span className="sr-only"> ({n.state})</span>
                  </span>
                </li>
              ))}
            </ol>
          </Card>
        )}
        {tokens && (
          <Card title="Streamed tokens">
            <p className="whitespace-pre-wrap text-sm" data-testid="tokens">
              {tokens}
            </p>
          </Card>
        )}
        {result && <ResultCard result={result} />}
        <Card title="Events">
          <ol className="space-y-1 text-sm" data-testid="events">
            {timeline(events).map(({ first, count, label }) => (
              <li key={first.id} className="flex flex-wrap items-center gap-2">
                <Status value={first.kind} />
                <span className="text-slate-700">
                  {label}
                  {count > 1 && <span className="text-slate-600"> ×{count}</span>}
                </span>
                <span className="ml-auto text-xs text-slate-600">
                  <When at={first.at} />
                </span>
              </li>
            ))}
          </ol>
        </Card>
      </div>
      {typeof result?.thread_id === "string" && (
        <Suspense fallback={<p className="mt-4 text-sm text-slate-600">Loading checkpoints…</p>}>
          <Checkpoints threadId={result.thread_id} canFork={atLeast(role, "member")} />
        </Suspense>
      )}
    </Page>
  );
}

function ResultCard({ result }: { result: Record<string, unknown> }) {
  const doc = result.document as { id?: string; version?: number; title?: string } | undefined;
  return (
    <Card title="Result">
      {result.run_status === "interrupted" && (
        <p className="mb-2 text-sm">
          Waiting for approval: <Link to="/approvals" className="underline">open the approvals inbox</Link>.
        </p>
      )}
      {result.decided === true && (
        <p className="mb-2 text-sm" data-testid="decision">
          Decided in the approvals inbox{typeof result.status === "string" ? `: ${result.status}` : ""}
          {result.run_status === "busy" ? "; the run is finishing…" : result.run_status === "error" ? "; the run then failed." : "."}
        </p>
      )}
      {doc?.id && (
        <p className="mb-2 text-sm">
          <Link to={`/documents/${doc.id}`} className="font-medium underline" data-testid="result-document">
            {doc.title ?? "The document"} (version {doc.version})
          </Link>
        </p>
      )}
      <Change value={result} />
      <details className="text-sm">
        <summary className="cursor-pointer text-slate-700">Result as JSON</summary>
        <pre tabIndex={0} className="mt-2 max-h-96 overflow-auto rounded bg-slate-100 p-2 text-xs">{JSON.stringify(result, null, 2)}</pre>
      </details>
    </Card>
  );
}

/** A code change as the codegen agent proposes it: its plan, its explanation, its diff. */
export function Change({ value }: { value: Record<string, unknown> }) {
  if (typeof value.diff !== "string") return null;
  const plan = Array.isArray(value.plan) ? value.plan.map(String) : typeof value.plan === "string" ? [value.plan] : [];
  return (
    <div className="mb-2 space-y-2 text-sm" data-testid="change">
      {plan.length > 0 && (
        <>
          <h3 className="font-medium">Plan</h3>
          <ol className="list-decimal space-y-0.5 pl-5">
            {plan.map((step, i) => (
              <li key={i}>{step}</li>
            ))}
          </ol>
        </>
      )}
      {typeof value.explanation === "string" && (
        <>
          <h3 className="font-medium">Explanation</h3>
          <p className="whitespace-pre-wrap">{value.explanation}</p>
        </>
      )}
      <Diff text={value.diff} />
    </div>
  );
}

/** A unified diff with added and removed lines marked. */
export function Diff({ text }: { text: string }) {
  return (
    <pre tabIndex={0} className="mb-2 max-h-[32rem] overflow-auto rounded bg-slate-950 p-2 text-xs text-slate-100" data-testid="diff">
      {text.split("\n").map((line, i) => {
        const tone = line.startsWith("+") && !line.startsWith("+++")
          ? "text-green-300"
          : line.startsWith("-") && !line.startsWith("---")
            ? "text-red-300"
            : line.startsWith("@@")
              ? "text-sky-300"
              : "";
        return (
          <span key={i} className={`block ${tone}`}>
            {line || " "}
          </span>
        );
      })}
    </pre>
  );
}
