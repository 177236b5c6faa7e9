// Home: the tenant's live task feed, running work, queue depth (admins), approvals waiting,
// and today's model cost against the daily budget.
import { useQuery } from "@tanstack/react-query";
import { Link } from "react-router";
import { api, must } from "../api/client";
import { atLeast, useRole } from "../auth";
import { Card, Page, Status, When } from "../components/ui";
import { LiveBadge, useTenantFeed } from "../live";

function today(): string {
  return new Date().toISOString().slice(0, 10);
}

export function Home() {
  const role = useRole();
  const { events, state } = useTenantFeed();
  const running = useQuery({
    queryKey: ["tasks", "running"],
    queryFn: () => must(api.GET("/api/v1/tasks", { params: { query: { status: "running", limit: "10" } } })),
  });
  const approvals = useQuery({
    queryKey: ["approvals", "pending"],
    queryFn: () => must(api.GET("/api/v1/approvals", { params: { query: { status: "pending" } } })),
  });
  const usage = useQuery({
    queryKey: ["usage", "today"],
    queryFn: () => must(api.GET("/api/v1/usage", { params: { query: { from: today() } } })),
  });
  const ai = useQuery({ queryKey: ["ai"], queryFn: () => must(api.GET("/api/v1/tenant/ai")) });
  const queue = useQuery({
    queryKey: ["queue"],
    queryFn: () => must(api.GET("/api/v1/queue")),
    enabled: atLeast(role, "admin"),
  });
  const cost = usage.data?.total.cost_usd ?? 0;
  const budget = ai.data?.budget.daily_usd ?? null;

  return (
    <Page title="Home" actions={<LiveBadge state={state} />}>
      <div className="grid grid-cols-2 gap-3 lg:grid-cols-4">
        <Card title="Running">
          <p className="text-3xl font-semibold" data-testid="running-count">
            {running.data?.items.length ?? "–"}
          </p>
        </Card>
        <Card title="Approvals waiting">
          <Link to="/approvals" className="text-3xl font-semibold underline-offset-4 hover:underline" data-testid="pending-count">
            {approvals.data?.length ?? "–"}
          </Link>
        </Card>
        <Card title="Cost today">
          <p className="text-3xl font-semibold">${cost.toFixed(4)}</p>
          <p className="text-xs text-slate-600">
            {budget !== null ? `of $${budget.toFixed(2)} daily budget` : "no daily budget set"}
            {usage.data ? ` · ${usage.data.total.total_tokens.toLocaleString()} tokens` : ""}
          </p>
        </Card>
        <Card title="Queue">
          {queue.data ? (
            <p className="text-3xl font-semibold" data-testid="queue-ready">
              {queue.data.ready_by_priority.reduce((a, b) => a + b, 0)}
              <span className="ml-2 text-xs font-normal text-slate-600">ready · {queue.data.running} running · {queue.data.dead} dead</span>
            </p>
          ) : (
            <p className="text-sm text-slate-600">{atLeast(role, "admin") ? "…" : "Admins see the queue."}</p>
          )}
        </Card>
      </div>
      <Card title="Live feed" className="mt-4">
        {events.length === 0 ? (
          <p className="text-sm text-slate-600">Nothing yet: events of every task in this tenant appear here as they happen.</p>
        ) : (
          <ol className="divide-y divide-slate-100" aria-live="polite" data-testid="feed">
            {events.map((e) => (
              <li key={e.id} data-at={e.at} className="flex flex-wrap items-center gap-2 py-2 text-sm">
                <Status value={e.kind} />
                <Link to={`/tasks/${e.task_id}`} className="font-mono text-xs underline-offset-2 hover:underline">
                  {e.task_id.slice(0, 13)}…
                </Link>
                <span className="truncate text-slate-700">{describe(e.data)}</span>
                <span className="ml-auto text-xs text-slate-600">
                  <When at={e.at} />
                </span>
              </li>
            ))}
          </ol>
        )}
      </Card>
    </Page>
  );
}

/** One line about an event's data: a progress step's name, or the first few keys. */
export function describe(data: unknown): string {
  if (data && typeof data === "object") {
    const d = data as Record<string, unknown>;
    const inner = d.data as Record<string, unknown> | undefined;
    if (typeof inner?.step === "string") return inner.step;
    if (typeof inner?.timing === "string" && typeof inner.ms === "number") return `${inner.timing}: ${Math.round(inner.ms)} ms`;
    if (typeof d.node === "string") return d.node;
    if (typeof d.kind === "string") return d.kind;
    if (typeof d.error === "string") return d.error;
  }
  return "";
}
