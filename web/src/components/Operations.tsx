// What the Operations and Platform pages share: the deployment's health, a queue's counts,
// and dead-lettered jobs with retry and purge — the tenant's own (its admins,
// /api/v1/queue) or, given `tenant`, any tenant's (platform admins, /api/v1/platform).
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, must } from "../api/client";
import type { components } from "../api/schema";
import { Button, Card, ErrorLine, When } from "./ui";

function endpoints(tenant: string | undefined) {
  if (tenant === undefined) {
    return {
      key: ["queue"],
      list: () => must(api.GET("/api/v1/queue/dead")),
      retry: (id: string) => must(api.POST("/api/v1/queue/dead/{id}/retry", { params: { path: { id } } })),
      purge: (id: string) => must(api.DELETE("/api/v1/queue/dead/{id}", { params: { path: { id } } })),
      purgeAll: () => must(api.DELETE("/api/v1/queue/dead")),
    };
  }
  const base = { tenant_id: tenant };
  return {
    key: ["platform"],
    list: () => must(api.GET("/api/v1/platform/tenants/{tenant_id}/queue/dead", { params: { path: base } })),
    retry: (id: string) =>
      must(api.POST("/api/v1/platform/tenants/{tenant_id}/queue/dead/{id}/retry", { params: { path: { ...base, id } } })),
    purge: (id: string) =>
      must(api.DELETE("/api/v1/platform/tenants/{tenant_id}/queue/dead/{id}", { params: { path: { ...base, id } } })),
    purgeAll: () => must(api.DELETE("/api/v1/platform/tenants/{tenant_id}/queue/dead", { params: { path: base } })),
  };
}

export function DeadLetters({ tenant, title = "Dead letters" }: { tenant?: string; title?: string }) {
  const qc = useQueryClient();
  const e = endpoints(tenant);
  const dead = useQuery({ queryKey: [...e.key, tenant, "dead"], queryFn: e.list });
  const done = () => void qc.invalidateQueries({ queryKey: e.key });
  const retry = useMutation({ mutationFn: e.retry, onSuccess: done });
  const purge = useMutation({ mutationFn: e.purge, onSuccess: done });
  const purgeAll = useMutation({ mutationFn: e.purgeAll, onSuccess: done });
  return (
    <Card title={title} className="mt-4">
      <ErrorLine error={dead.error ?? retry.error ?? purge.error ?? purgeAll.error} />
      {dead.data?.length === 0 ? (
        <p className="text-sm text-slate-600">None: every job finished or is still trying.</p>
      ) : (
        <>
          <ul className="divide-y divide-slate-100 text-sm">
            {dead.data?.map((j) => (
              <li key={j.id} className="flex flex-wrap items-center gap-2 py-2">
                <span className="font-medium">{j.kind}</span>
                <span className="text-slate-700">
                  {j.attempts} {j.attempts === 1 ? "attempt" : "attempts"}: {j.last_error}
                </span>
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
  );
}

export function QueueCounts({ depth }: { depth: components["schemas"]["QueueDepth"] }) {
  return (
    <dl className="grid grid-cols-2 gap-1 text-sm" data-testid="queue">
      <dt>Ready</dt>
      <dd>{depth.ready_by_priority.reduce((a, b) => a + b, 0)}</dd>
      <dt>Running</dt>
      <dd>{depth.running}</dd>
      <dt>Scheduled</dt>
      <dd>{depth.scheduled}</dd>
      <dt>Dead</dt>
      <dd>{depth.dead}</dd>
    </dl>
  );
}

export function Health() {
  const ready = useQuery({ queryKey: ["readyz"], queryFn: () => must(api.GET("/readyz")), refetchInterval: 10_000 });
  const r = ready.data;
  return (
    <Card title="Health">
      {r ? (
        <dl className="grid grid-cols-2 gap-1 text-sm" data-testid="health">
          <dt>Status</dt>
          <dd>{r.status}</dd>
          <dt>Database</dt>
          <dd>
            {r.database} ({r.backend})
          </dd>
          <dt>Embeddings</dt>
          <dd className="break-all">{r.embeddings}</dd>
          {r.warnings.map((w) => (
            <dd key={w} className="col-span-2 text-amber-900">
              {w}
            </dd>
          ))}
        </dl>
      ) : (
        !ready.error && <p className="text-sm">…</p>
      )}
      <ErrorLine error={ready.error} />
    </Card>
  );
}
