// Who is signed in, in which tenant, with which role; and the guard that sends a visitor
// without a session to the login page (after trying the refresh cookie once).
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState, useSyncExternalStore, type ReactNode } from "react";
import { Navigate, useLocation } from "react-router";
import { api, must } from "./api/client";
import type { components } from "./api/schema";
import { maybeSignedIn, refresh, session, setSession, subscribe } from "./api/session";

export type Role = components["schemas"]["Role"];
const RANK: Record<Role, number> = { viewer: 0, member: 1, admin: 2, owner: 3 };

/** Whether `role` is at least `min` (the server's own rule; it still checks). */
export function atLeast(role: Role | undefined, min: Role): boolean {
  return role !== undefined && RANK[role] >= RANK[min];
}

export function useSession() {
  return useSyncExternalStore(subscribe, session);
}

export function useMe() {
  const s = useSession();
  return useQuery({
    queryKey: ["me", s?.tenant.id],
    queryFn: () => must(api.GET("/api/v1/me")),
    enabled: s !== null,
    staleTime: 60_000,
  });
}

/** The caller's role in the current tenant (undefined while loading). */
export function useRole(): Role | undefined {
  return useMe().data?.current_role;
}

export function useSignOut() {
  const qc = useQueryClient();
  return async () => {
    await api.POST("/api/v1/auth/logout", { body: {} });
    setSession(null);
    qc.clear();
  };
}

export function useSwitchTenant() {
  const qc = useQueryClient();
  return async (tenantId: string) => {
    const s = await must(api.POST("/api/v1/auth/switch-tenant", { body: { tenant_id: tenantId } }));
    qc.clear();
    setSession(s);
  };
}

/** Renders its children with a session, restoring one from the refresh cookie first. */
export function RequireSession({ children }: { children: ReactNode }) {
  const s = useSession();
  const [tried, setTried] = useState(s !== null || !maybeSignedIn());
  const location = useLocation();
  useEffect(() => {
    if (s === null && !tried) void refresh().finally(() => setTried(true));
  }, [s, tried]);
  if (s) return children;
  if (!tried) {
    return (
      <p role="status" className="p-8 text-slate-600">
        Signing in…
      </p>
    );
  }
  const next = encodeURIComponent(location.pathname + location.search);
  return <Navigate to={`/login?next=${next}`} replace />;
}
