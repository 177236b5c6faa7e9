// Usage: model calls, tokens and cost over a period, by day, model or task, as bars.
import { useQuery } from "@tanstack/react-query";
import { Link, useSearchParams } from "react-router";
import { api, must } from "../api/client";
import type { components } from "../api/schema";
import { Card, ErrorLine, Field, Page, input } from "../components/ui";

type Group = components["schemas"]["UsageGroup"];

function daysAgo(n: number): string {
  return new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10);
}

export function Usage() {
  const [params, setParams] = useSearchParams();
  const group = (params.get("by") ?? "day") as Group;
  const from = params.get("from") ?? daysAgo(29);
  const usage = useQuery({
    queryKey: ["usage", group, from],
    queryFn: () => must(api.GET("/api/v1/usage", { params: { query: { group_by: group, from } } })),
  });
  const rows = usage.data?.rows ?? [];
  const top = Math.max(...rows.map((r) => r.total_tokens), 1);
  const set = (k: string, v: string) => setParams((p) => (p.set(k, v), p), { replace: true });
  return (
    <Page title="Usage">
      <form className="mb-4 flex flex-wrap gap-3" onSubmit={(e) => e.preventDefault()}>
        <Field label="Group by">
          <select className={input} value={group} onChange={(e) => set("by", e.target.value)}>
            <option value="day">day</option>
            <option value="model">model</option>
            <option value="task">task</option>
          </select>
        </Field>
        <Field label="From">
          <input type="date" className={input} value={from} onChange={(e) => e.target.value && set("from", e.target.value)} />
        </Field>
      </form>
      <ErrorLine error={usage.error} />
      {usage.data && (
        <Card title={`Total: $${usage.data.total.cost_usd.toFixed(4)} · ${usage.data.total.total_tokens.toLocaleString()} tokens · ${usage.data.total.calls} call${usage.data.total.calls === 1 ? "" : "s"}`}>
          {rows.length === 0 ? (
            <p className="text-sm text-slate-600">No model calls in this period.</p>
          ) : (
            <table className="w-full text-left text-sm" data-testid="usage">
              <caption className="sr-only">Usage by {group}</caption>
              <thead className="text-xs uppercase text-slate-600">
                <tr>
                  <th scope="col" className="py-2">{group}</th>
                  <th scope="col" className="w-2/5">Tokens</th>
                  <th scope="col" className="text-right">Calls</th>
                  <th scope="col" className="text-right">Cost</th>
                </tr>
              </thead>
              <tbody className="divide-y divide-slate-100">
                {rows.map((r) => (
                  <tr key={r.key ?? "-"}>
                    <td className="break-all py-2 font-mono text-xs">
                      {group === "task" && r.key ? <Link to={`/tasks/${r.key}`} className="underline">{r.key.slice(0, 13)}…</Link> : (r.key || "outside a task")}
                    </td>
                    <td>
                      <div className="flex items-center gap-2">
                        <div className="h-3 rounded bg-slate-700" style={{ width: `${(100 * r.total_tokens) / top}%` }} aria-hidden="true" />
                        <span className="text-xs">{r.total_tokens.toLocaleString()}</span>
                      </div>
                    </td>
                    <td className="text-right">{r.calls}</td>
                    <td className="text-right">${r.cost_usd.toFixed(4)}{r.unpriced_calls ? ` (+${r.unpriced_calls} unpriced)` : ""}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Card>
      )}
    </Page>
  );
}
