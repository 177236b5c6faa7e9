// Operations (admins): readiness, the tenant's queue, and its dead letters with retry and
// purge.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, must } from "../api/client";
import { atLeast, useRole } from "../auth";
import { Button, Card, ErrorLine, Page, When } from "../components/ui";

export function Admin() {
  const role = useRole();
  const qc = useQueryClient();
  const admin = atLeast(role, "admin");
  const ready = useQuery({ queryKey: ["readyz"], queryFn: () => must(api.GET("/readyz")), refetchInterval: 10_000 });
  const queue = useQuery({ queryKey: ["queue"], queryFn: () => must(api.GET("/api/v1/queue")), enabled: admin });
  const dead = useQuery({ queryKey: ["queue", "dead"], queryFn: () => must(api.GET("/api/v1/queue/dead")), enabled: admin });
  const done = () => void qc.invalidateQueries({ queryKey: ["queue"] });
  const retry = useMutation({ mutationFn: (id: string) => must(api.POST("/api/v1/queue/dead/{id}/retry", { params: { path: { id } } })), onSuccess: done });
  const purge = useMutation({ mutationFn: (id: string) => must(api.DELETE("/api/v1/queue/dead/{id}", { params: { path: { id } } })), onSuccess: done });
  const purgeAll = useMutation({ mutationFn: () => must(api.DELETE("/api/v1/queue/dead")), onSuccess: done });
  if (!admin) {
    return (
      <Page title="Operations">
        <Card>
          <p className="text-sm text-slate-700">{role ? "Operations are for the tenant's admins." : "Loading…"}</p>
        </Card>
      </Page>
    );
  }
  const q = queue.data;
  return (
    <Page title="Operations">
      <div className="grid grid-cols-1 gap-4 sm:grid-cols-2">
        <Card title="Health">
          <pre tabIndex={0} className="max-h-48 overflow-auto text-xs">{ready.data ? JSON.stringify(ready.data, null, 2) : "…"}</pre>
          <ErrorLine error={ready.error} />
        </Card>
        <Card title="Queue">
          {q && (
            <dl className="grid grid-cols-2 gap-1 text-sm" data-testid="queue">
              <dt>Ready</dt>
              <dd>{q.ready_by_priority.reduce((a, b) => a + b, 0)}</dd>
              <dt>Running</dt>
              <dd>{q.running}</dd>
              <dt>Scheduled</dt>
              <dd>{q.scheduled}</dd>
              <dt>Dead</dt>
              <dd>{q.dead}</dd>
            </dl>
          )}
          <ErrorLine error={queue.error} />
        </Card>
      </div>
      <Card title="Dead letters" className="mt-4">
        <ErrorLine error={dead.error ?? retry.error ?? purge.error ?? purgeAll.error} />
        {dead.data?.length === 0 ? (
          <p className="text-sm text-slate-600">None: every job finished or is still trying.</p>
        ) : (
          <>
            <ul className="divide-y divide-slate-100 text-sm">
              {dead.data?.map((j) => (
                <li key={j.id} className="flex flex-wrap items-center gap-2 py-2">
                  <span className="font-medium">{j.kind}</span>
                  <span className="text-slate-700">{j.attempts} attempts: {j.last_error}</span>
                  <span className="text-xs text-slate-600">
                    <When at={j.failed_at} />
                  </span>
                  <span className="ml-auto flex gap-2">
                    <Button tone="secondary" onClick={() => retry.mutate(j.id)}>
                      Retry
                    </Button>
                    <Button tone="danger" onClick={() => purge.mutate(j.id)}>
                      Purge
                    </Button>
                  </span>
                </li>
              ))}
            </ul>
            <Button tone="danger" className="mt-3" onClick={() => purgeAll.mutate()}>
              Purge all
            </Button>
          </>
        )}
      </Card>
    </Page>
  );
}
