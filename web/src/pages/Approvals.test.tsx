// What a viewer and a member see in the approvals inbox, against a stand-in for the API.
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { cleanup, render, screen } from "@testing-library/react";
import { MemoryRouter } from "react-router";
import { afterEach, describe, expect, it, vi } from "vitest";
import { setSession } from "../api/session";
import { Approvals } from "./Approvals";

const tenant = { id: "0190ffff-0000-7000-8000-000000000001", name: "Acme", slug: "acme", created_at: "2026-01-01T00:00:00Z" };
const user = { id: "0190ffff-0000-7000-8000-000000000002", email: "a@example.com", name: null, is_platform_admin: false, created_at: "2026-01-01T00:00:00Z" };
const approval = {
  id: "0190ffff-0000-7000-8000-000000000003",
  thread_id: "0190ffff-0000-7000-8000-000000000004",
  run_id: "0190ffff-0000-7000-8000-000000000005",
  graph_id: "faq",
  assistant_id: "0190ffff-0000-7000-8000-000000000006",
  interrupt_id: "i",
  value: { question: "Publish this document?", title: "How do we deploy?", draft: "# How do we deploy?", min_role: "member" },
  status: "pending",
  created_at: "2026-01-01T00:00:00Z",
  updated_at: "2026-01-01T00:00:00Z",
};

function serve(role: string) {
  const seen: string[] = [];
  vi.stubGlobal("fetch", async (req: Request) => {
    const url = new URL(req.url);
    seen.push(`${req.method} ${url.pathname}`);
    const body =
      url.pathname === "/api/v1/me"
        ? { user, memberships: [{ tenant, role, joined_at: tenant.created_at }], current_tenant_id: tenant.id, current_role: role }
        : url.pathname === "/api/v1/approvals"
          ? [approval]
          : null;
    if (url.pathname === "/api/v1/events") return new Response(new ReadableStream(), { headers: { "content-type": "text/event-stream" } });
    return new Response(JSON.stringify(body), { status: body ? 200 : 404, headers: { "content-type": "application/json" } });
  });
  setSession({ user, tenant, access_token: "t", refresh_token: "r", token_type: "Bearer", expires_in: 900 });
  const qc = new QueryClient();
  render(
    <QueryClientProvider client={qc}>
      <MemoryRouter initialEntries={["/approvals"]}>
        <Approvals />
      </MemoryRouter>
    </QueryClientProvider>,
  );
  return { seen, qc };
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  setSession(null);
});

describe("Approvals", () => {
  it("offers a member the decision, with the draft and who may decide", async () => {
    const { seen } = serve("member");
    await screen.findByRole("button", { name: "Approve" });
    expect(screen.getByRole("button", { name: "Reject" })).toBeTruthy();
    expect(screen.getByText(/decided by a member or above/)).toBeTruthy();
    expect(screen.getByRole("heading", { name: "How do we deploy?" })).toBeTruthy();
    expect(seen).toContain("GET /api/v1/approvals");
  });

  it("shows a viewer the draft and no decision controls", async () => {
    const { qc } = serve("viewer");
    await screen.findByRole("heading", { name: "How do we deploy?" });
    // The role arrives with /me: assert the absence only once the page knows it.
    await vi.waitFor(() => expect(qc.getQueryData(["me", tenant.id])).toBeTruthy());
    await new Promise((r) => setTimeout(r, 20));
    expect(screen.queryByRole("button", { name: "Approve" })).toBeNull();
    expect(screen.queryByRole("button", { name: "Reject" })).toBeNull();
  });
});
