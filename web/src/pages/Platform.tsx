// Platform administration (users flagged platform admin): every tenant with its members,
// tasks and queue, the deployment's health, and each tenant's dead letters.
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { api, must } from "../api/client";
import { useMe } from "../auth";
import { DeadLetters, Health, QueueCounts } from "../components/Operations";
import { Button, Card, ErrorLine, Page, When } from "../components/ui";

const PAGE = 50;

export function Platform() {
  const me = useMe();
  const allowed = me.data?.user.is_platform_admin === true;
  // The slugs each page starts after: Back pops one.
  const [cursors, setCursors] = useState<string[]>([]);
  const after = cursors.at(-1);
  const [open, setOpen] = useState<string | null>(null);
  const tenants = useQuery({
    queryKey: ["platform", "tenants", after],
    queryFn: () => must(api.GET("/api/v1/platform/tenants", { params: { query: { after, limit: String(PAGE) } } })),
    enabled: allowed,
    refetchInterval: 10_000,
  });
  if (!allowed) {
    return (
      <Page title="Platform">
        <Card>
          <p className="text-sm text-slate-700">{me.data ? "The platform is for platform administrators." : "Loading…"}</p>
        </Card>
      </Page>
    );
  }
  const list = tenants.data ?? [];
  const last = list.at(-1);
  return (
    <Page title="Platform">
      <Health />
      <Card title="Tenants" className="mt-4">
        <ErrorLine error={tenants.error} />
        <ul className="divide-y divide-slate-100" data-testid="tenants">
          {list.map((t) => (
            <li key={t.tenant.id} className="py-3">
              <div className="flex flex-wrap items-center gap-x-3 gap-y-1">
                <span className="font-medium">{t.tenant.name}</span>
                <span className="text-xs text-slate-600">{t.tenant.slug}</span>
                <span className="text-xs text-slate-600">
                  since <When at={t.tenant.created_at} />
                </span>
                <Button
                  tone="secondary"
                  className="ml-auto"
                  aria-expanded={open === t.tenant.id}
                  onClick={() => setOpen(open === t.tenant.id ? null : t.tenant.id)}
                >
                  Dead letters ({t.queue.dead})
                </Button>
              </div>
              <p className="mt-1 text-sm text-slate-700">
                {t.members} {t.members === 1 ? "member" : "members"} · {t.tasks} tasks, {t.active_tasks} active
              </p>
              <details className="mt-1 text-sm">
                <summary className="cursor-pointer text-slate-700">Queue</summary>
                <QueueCounts depth={t.queue} />
              </details>
              {open === t.tenant.id && <DeadLetters tenant={t.tenant.id} title={`Dead letters of ${t.tenant.name}`} />}
            </li>
          ))}
        </ul>
        <div className="mt-3 flex gap-2">
          <Button tone="secondary" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
            Previous
          </Button>
          <Button tone="secondary" disabled={list.length < PAGE} onClick={() => last && setCursors([...cursors, last.tenant.slug])}>
            Next
          </Button>
        </div>
      </Card>
    </Page>
  );
}
