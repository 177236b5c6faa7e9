// Sign in, or sign up (which creates the user's first tenant).
import { useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { api, must } from "../api/client";
import { setSession } from "../api/session";
import { Button, ErrorLine, Field, input } from "../components/ui";

export function Login({ signup = false }: { signup?: boolean }) {
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const qc = useQueryClient();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const email = String(f.get("email"));
    const password = String(f.get("password"));
    setBusy(true);
    setError(null);
    try {
      const s = signup
        ? await must(
            api.POST("/api/v1/auth/signup", {
              body: { email, password, tenant_name: String(f.get("tenant") || "") || null },
            }),
          )
        : await must(api.POST("/api/v1/auth/login", { body: { email, password } }));
      qc.clear();
      setSession(s);
      const next = params.get("next");
      navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : "/", { replace: true });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="flex min-h-screen items-center justify-center px-4">
      <div className="w-full max-w-sm">
        <h1 className="mb-1 text-2xl font-semibold tracking-tight">MorningAI</h1>
        <p className="mb-6 text-sm text-slate-600">{signup ? "Create your account and your team's tenant." : "Sign in to your tenant."}</p>
        <form onSubmit={(e) => void submit(e)} className="space-y-4 rounded-lg border border-slate-200 bg-white p-5 shadow-sm">
          <Field label="Email">
            <input name="email" type="email" autoComplete="email" required className={input} />
          </Field>
          <Field label="Password" hint={signup ? "At least 8 characters." : undefined}>
            <input
              name="password"
              type="password"
              autoComplete={signup ? "new-password" : "current-password"}
              required
              minLength={signup ? 8 : undefined}
              className={input}
            />
          </Field>
          {signup && (
            <Field label="Team name" hint="Optional; you can rename it later.">
              <input name="tenant" type="text" maxLength={200} className={input} />
            </Field>
          )}
          <ErrorLine error={error} />
          <Button type="submit" disabled={busy} className="w-full">
            {signup ? "Create account" : "Sign in"}
          </Button>
        </form>
        <p className="mt-4 text-center text-sm">
          {signup ? (
            <Link to="/login" className="text-slate-900 underline">
              I have an account
            </Link>
          ) : (
            <Link to="/signup" className="text-slate-900 underline">
              Create an account
            </Link>
          )}
        </p>
      </div>
    </main>
  );
}
