// The frame of every signed-in page: navigation, the tenant switcher, the user's role and
// sign-out. On a phone the navigation is a scrollable row under the header.
import { NavLink, Outlet, useNavigate } from "react-router";
import { atLeast, useMe, useSession, useSignOut, useSwitchTenant } from "../auth";

const LINKS: { to: string; label: string; admin?: boolean; platform?: boolean }[] = [
  { to: "/", label: "Home" },
  { to: "/ask", label: "Ask" },
  { to: "/codegen", label: "Codegen" },
  { to: "/tasks", label: "Tasks" },
  { to: "/approvals", label: "Approvals" },
  { to: "/documents", label: "Documents" },
  { to: "/memory", label: "Memory" },
  { to: "/automation", label: "Automation" },
  { to: "/usage", label: "Usage" },
  { to: "/settings", label: "Settings", admin: true },
  { to: "/operations", label: "Operations", admin: true },
  { to: "/platform", label: "Platform", platform: true },
];

export function Layout() {
  const s = useSession();
  const me = useMe().data;
  const signOut = useSignOut();
  const switchTenant = useSwitchTenant();
  const navigate = useNavigate();
  return (
    <div className="flex min-h-screen flex-col">
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-10 focus:bg-white focus:p-2">
        Skip to content
      </a>
      <header className="bg-slate-900 text-white">
        <div className="mx-auto flex max-w-6xl items-center gap-3 px-4 pt-3 sm:px-6">
          <NavLink to="/" className="mr-2 text-lg font-semibold tracking-tight">
            MorningAI
          </NavLink>
          <div className="ml-auto flex items-center gap-2 text-sm">
            {me && me.memberships.length > 1 ? (
              <select
                aria-label="Tenant"
                className="max-w-40 rounded-md border border-slate-600 bg-slate-800 px-2 py-1.5 text-white"
                value={s?.tenant.id}
                onChange={(e) => void switchTenant(e.target.value).then(() => navigate("/"))}
              >
                {me.memberships.map((m) => (
                  <option key={m.tenant.id} value={m.tenant.id}>
                    {m.tenant.name}
                  </option>
                ))}
              </select>
            ) : (
              <span className="max-w-40 truncate text-slate-200">{s?.tenant.name}</span>
            )}
            {me && (
              <span className="rounded-full bg-slate-700 px-2 py-0.5 text-xs" title="Your role in this tenant">
                {me.current_role}
              </span>
            )}
            <button
              type="button"
              className="rounded-md px-3 py-1.5 text-slate-200 hover:bg-slate-800"
              onClick={() => void signOut().then(() => navigate("/login"))}
            >
              Sign out
            </button>
          </div>
        </div>
        <nav aria-label="Main" className="mx-auto max-w-6xl overflow-x-auto px-4 py-2 sm:px-6">
          <ul className="flex gap-1">
            {LINKS.filter((l) => (!l.admin || atLeast(me?.current_role, "admin")) && (!l.platform || me?.user.is_platform_admin)).map((l) => (
              <li key={l.to}>
                <NavLink
                  to={l.to}
                  end={l.to === "/"}
                  className={({ isActive }) =>
                    `block whitespace-nowrap rounded-md px-3 py-2 text-sm ${isActive ? "bg-slate-700 text-white" : "text-slate-200 hover:bg-slate-800"}`
                  }
                >
                  {l.label}
                </NavLink>
              </li>
            ))}
          </ul>
        </nav>
      </header>
      <main id="main" className="flex-1">
        <Outlet />
      </main>
    </div>
  );
}
