// Operations (admins): readiness, the tenant's queue, and its dead letters with retry and
// purge. (Across tenants, for platform admins: Platform.tsx.)
import { useQuery } from "@tanstack/react-query";
import { api, must } from "../api/client";
import { atLeast, useRole } from "../auth";
import { DeadLetters, Health, QueueCounts } from "../components/Operations";
import { Card, ErrorLine, Page } from "../components/ui";

export function Admin() {
  const role = useRole();
  const admin = atLeast(role, "admin");
  const queue = useQuery({ queryKey: ["queue"], queryFn: () => must(api.GET("/api/v1/queue")), enabled: admin });
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
        <Health />
        <Card title="Queue">
          {q && <QueueCounts depth={q} />}
          <ErrorLine error={queue.error} />
        </Card>
      </div>
      <DeadLetters />
    </Page>
  );
}
