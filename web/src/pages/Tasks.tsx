// Tasks: the tenant's tasks, newest first, filtered by status and kind, a page at a time.
import { useInfiniteQuery } from "@tanstack/react-query";
import { Link, useSearchParams } from "react-router";
import { api, must } from "../api/client";
import { Button, Card, ErrorLine, Field, Page, Status, When, input } from "../components/ui";
import { LiveBadge, useTenantFeed } from "../live";

const STATUSES = ["", "queued", "running", "retrying", "succeeded", "failed", "cancelled"];

export function Tasks() {
  const [params, setParams] = useSearchParams();
  const status = params.get("status") ?? "";
  const kind = params.get("kind") ?? "";
  const { state } = useTenantFeed();
  const list = useInfiniteQuery({
    queryKey: ["tasks", "list", status, kind],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam }) =>
      must(
        api.GET("/api/v1/tasks", {
          params: { query: { status: status || undefined, kind: kind || undefined, limit: "25", cursor: pageParam } },
        }),
      ),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const set = (key: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
  };
  const tasks = list.data?.pages.flatMap((p) => p.items) ?? [];

  return (
    <Page title="Tasks" actions={<LiveBadge state={state} />}>
      <form className="mb-4 flex flex-wrap gap-3" onSubmit={(e) => e.preventDefault()} aria-label="Filter tasks">
        <Field label="Status">
          <select className={input} value={status} onChange={(e) => set("status", e.target.value)}>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s || "any"}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Kind">
          <input className={input} value={kind} placeholder="faq, codegen, index, echo…" onChange={(e) => set("kind", e.target.value.trim())} />
        </Field>
      </form>
      <ErrorLine error={list.error} />
      <Card>
        {tasks.length === 0 && !list.isPending ? (
          <p className="text-sm text-slate-600">No tasks match.</p>
        ) : (
          <table className="w-full text-left text-sm">
            <caption className="sr-only">Tasks</caption>
            <thead className="text-xs uppercase text-slate-600">
              <tr>
                <th scope="col" className="py-2">Task</th>
                <th scope="col">Kind</th>
                <th scope="col">Status</th>
                <th scope="col" className="hidden sm:table-cell">Created</th>
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-100">
              {tasks.map((t) => (
                <tr key={t.id}>
                  <td className="py-2">
                    <Link to={`/tasks/${t.id}`} className="font-mono text-xs underline underline-offset-2">
                      {t.id.slice(0, 13)}…
                    </Link>
                  </td>
                  <td>{t.kind}</td>
                  <td>
                    <Status value={t.status} />
                  </td>
                  <td className="hidden sm:table-cell">
                    <When at={t.created_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {list.hasNextPage && (
          <Button tone="secondary" className="mt-3" onClick={() => void list.fetchNextPage()} disabled={list.isFetchingNextPage}>
            More
          </Button>
        )}
      </Card>
    </Page>
  );
}
