// Routes: the sign-in pages, and every signed-in page inside the layout, each loaded when
// first visited (one chunk per page).
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { lazy, Suspense, type ComponentType } from "react";
import { createBrowserRouter, Link, RouterProvider } from "react-router";
import { RequireSession } from "./auth";
import { Layout } from "./components/Layout";
import { Page } from "./components/ui";
import { Home } from "./pages/Home";
import { Login } from "./pages/Login";

function page(load: () => Promise<ComponentType>) {
  const Component = lazy(async () => ({ default: await load() }));
  return (
    <Suspense fallback={<p role="status" className="p-6 text-sm text-slate-600">Loading…</p>}>
      <Component />
    </Suspense>
  );
}

function NotFound() {
  return (
    <Page title="Not found">
      <p className="text-sm">
        No page here. <Link to="/" className="underline">Home</Link>
      </p>
    </Page>
  );
}

const router = createBrowserRouter([
  { path: "/login", element: <Login /> },
  { path: "/signup", element: <Login signup /> },
  {
    element: (
      <RequireSession>
        <Layout />
      </RequireSession>
    ),
    children: [
      { path: "/", element: <Home /> },
      { path: "/ask", element: page(() => import("./pages/Ask").then((m) => m.Ask)) },
      { path: "/tasks", element: page(() => import("./pages/Tasks").then((m) => m.Tasks)) },
      { path: "/tasks/:id", element: page(() => import("./pages/TaskDetail").then((m) => m.TaskDetail)) },
      { path: "/approvals", element: page(() => import("./pages/Approvals").then((m) => m.Approvals)) },
      { path: "/documents", element: page(() => import("./pages/Documents").then((m) => m.Documents)) },
      { path: "/documents/:id", element: page(() => import("./pages/DocumentView").then((m) => m.DocumentView)) },
      { path: "/memory", element: page(() => import("./pages/Memory").then((m) => m.Memory)) },
      { path: "/codegen", element: page(() => import("./pages/Codegen").then((m) => m.Codegen)) },
      { path: "/automation", element: page(() => import("./pages/Automation").then((m) => m.Automation)) },
      { path: "/usage", element: page(() => import("./pages/Usage").then((m) => m.Usage)) },
      { path: "/settings/:tab?", element: page(() => import("./pages/Settings").then((m) => m.Settings)) },
      { path: "/operations", element: page(() => import("./pages/Admin").then((m) => m.Admin)) },
      { path: "/platform", element: page(() => import("./pages/Platform").then((m) => m.Platform)) },
      { path: "*", element: <NotFound /> },
    ],
  },
]);

const queryClient = new QueryClient({
  defaultOptions: { queries: { retry: 1, refetchOnWindowFocus: true, staleTime: 5_000 } },
});

export function App() {
  return (
    <QueryClientProvider client={queryClient}>
      <RouterProvider router={router} />
    </QueryClientProvider>
  );
}
