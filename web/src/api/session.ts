// The browser's session: the short-lived access token lives in this module's memory only.
// The refresh token travels as the server's HttpOnly `morningai_refresh` cookie (path
// /api/v1/auth, SameSite=Strict) and never reaches JavaScript; a reload restores the
// session by refreshing through that cookie.
import type { components } from "./schema";

export type Session = components["schemas"]["Session"];
/** What the page keeps of a session: never the refresh token. */
export type Current = Omit<Session, "refresh_token">;

let current: Current | null = null;
/** A flag (never a token) telling a reloaded page that a refresh cookie may exist. */
const SIGNED_IN = "morningai.signed-in";
let refreshing: Promise<Current | null> | null = null;
const listeners = new Set<() => void>();

export function session(): Current | null {
  return current;
}

export function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function setSession(s: Session | null): void {
  if (s) {
    const { refresh_token: _dropped, ...kept } = s;
    void _dropped;
    current = kept;
    localStorage.setItem(SIGNED_IN, "1");
  } else {
    current = null;
    localStorage.removeItem(SIGNED_IN);
  }
  listeners.forEach((l) => l());
}

/** Whether this browser signed in before (and has not signed out since). */
export function maybeSignedIn(): boolean {
  return localStorage.getItem(SIGNED_IN) === "1";
}

/** New tokens through the refresh cookie; concurrent callers share one request. Null when
 *  the cookie is missing, expired or revoked (the user must log in). */
export function refresh(): Promise<Current | null> {
  refreshing ??= (async () => {
    try {
      const res = await fetch("/api/v1/auth/refresh", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
        credentials: "same-origin",
      });
      setSession(res.ok ? ((await res.json()) as Session) : null);
      return current;
    } catch {
      return current;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}
