"""The final reconciliation of bench/soak.sh (standard library only).

Runs the load driver (`soak-load`, crates/bench/src/soak_load.rs): echo tasks (and, every
tenth slot, a small graph run on a new thread) at a fixed rate through the load balancer,
each with an idempotency key (a request the balancer retries on another server creates one
task), a GET of an earlier task after each post, and SSE clients that follow the tenant's
event stream and resume with Last-Event-ID whenever a connection drops. After the load it
waits for every acknowledged task to finish, then
reconciles against PostgreSQL (psql): every task the API acknowledged with 2xx must be
`succeeded` with its input as its result, with exactly one terminal event and its queued and
started events; every SSE client must have seen the terminal event of every task created
while it was attached. Prints one JSON report; exit code 1 when reconciliation fails.
"""

import argparse
import json
import os
import subprocess
import sys
import time


def window_of(t, latency, faults):
    """The fault window a request overlapped (it started before the window ended and
    finished after it began), or "none"."""
    for name, start, end in faults:
        if t <= end and t + latency >= start:
            return name
    return "none"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--database-url", required=True)
    p.add_argument("--assistant", required=True, help="assistant id of the uploaded soak graph")
    p.add_argument("--rate", type=float, default=50)
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--driver", required=True, help="the soak-load binary")
    p.add_argument("--out", required=True, help="directory for the driver's files")
    p.add_argument("--sse", type=int, default=4)
    p.add_argument("--faults", required=True, help="file: name start end (epoch s) per line")
    p.add_argument("--drain", type=float, default=180)
    a = p.parse_args()

    out = a.out
    driver = subprocess.Popen(
        [a.driver, "--mode", "open", "--base", a.base, "--key", a.key, "--assistant", a.assistant,
         "--rate", str(a.rate), "--seconds", str(a.seconds), "--sse", str(a.sse), "--out", out],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    offered = json.loads(driver.stdout.readline())
    ended = time.time()
    acked, graph_tasks = [], []  # (id, slot, t_post) of echo tasks; ids of graph runs
    for line in open(os.path.join(out, "acked.tsv")):
        task, what, slot, t = line.split("\t")
        if what == "echo":
            acked.append((task, int(slot), float(t)))
        else:
            graph_tasks.append(task)
    samples = []  # (t, op, status, latency_s)
    for line in open(os.path.join(out, "samples.tsv")):
        t, op, status, latency = line.split("\t")
        samples.append((float(t), op, int(status), float(latency)))

    # Drain: every acknowledged task terminal, then give the streams a moment.
    graph_ids = "".join(f"{i}\tgraph\n" for i in graph_tasks)
    all_ids = "".join(f"{i}\techo\n" for i, _, _ in acked) + graph_ids
    setup = "CREATE TEMP TABLE acked(id uuid, what text); COPY acked FROM STDIN;"
    pending = None
    deadline = time.time() + a.drain
    while time.time() < deadline:
        pending = int(subprocess.run(
            ["psql", a.database_url, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", setup, "-c",
             "SELECT count(*) FROM acked LEFT JOIN tasks t USING (id) "
             "WHERE t.status IS NULL OR t.status NOT IN ('succeeded','failed','cancelled')"],
            input=all_ids, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
        if pending == 0:
            break
        time.sleep(2)
    drained = time.time() - ended
    time.sleep(3)
    driver.stdin.close()  # the SSE clients stop and write what they saw
    if driver.wait() != 0:
        sys.exit(f"soak-load exited with {driver.returncode}")
    clients = json.load(open(os.path.join(out, "sse.json")))

    check = subprocess.run(
        ["psql", a.database_url, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", setup, "-c",
         """SELECT json_build_object(
              'acked', (SELECT count(*) FROM acked),
              'missing', (SELECT count(*) FROM acked LEFT JOIN tasks t USING (id) WHERE t.id IS NULL),
              'not_succeeded', (SELECT count(*) FROM acked JOIN tasks t USING (id) WHERE t.status <> 'succeeded'),
              'graph_runs', (SELECT count(*) FROM acked WHERE what = 'graph'),
              'wrong_result', (SELECT count(*) FROM acked JOIN tasks t USING (id)
                               WHERE t.status = 'succeeded' AND CASE what
                                 WHEN 'echo' THEN t.result IS DISTINCT FROM t.input
                                 ELSE t.result IS NULL END),
              'terminal_not_once', (SELECT count(*) FROM acked a WHERE (SELECT count(*) FROM task_events e
                               WHERE e.task_id = a.id AND e.kind IN ('succeeded','failed','cancelled')) <> 1),
              'without_queued_or_started', (SELECT count(*) FROM acked a WHERE NOT EXISTS (SELECT 1 FROM task_events e
                               WHERE e.task_id = a.id AND e.kind = 'queued') OR NOT EXISTS (SELECT 1 FROM task_events e
                               WHERE e.task_id = a.id AND e.kind = 'started')),
              'echo_tasks_in_database', (SELECT count(*) FROM tasks WHERE idempotency_key LIKE 'soak-%'),
              'graph_tasks_in_database', (SELECT count(*) FROM tasks WHERE kind = 'graph_run'
                                          AND created_at >= to_timestamp(LOAD_START)),
              'started_more_than_once', (SELECT count(*) FROM acked a WHERE (SELECT count(*) FROM task_events e
                               WHERE e.task_id = a.id AND e.kind = 'started') > 1))"""
         .replace("LOAD_START", str(min(t for t, _, _, _ in samples) - 1))],
        input=all_ids, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    reconciled = json.loads(check)

    faults = []
    for line in open(a.faults):
        name, start, end = line.split()
        faults.append((name, float(start), float(end)))

    sse = []
    for c in clients:
        seen = set(c["terminal"])
        owed = [i for i, _, t in acked if c["attached_at"] and t >= c["attached_at"] + 2]  # echo tasks
        missed = [i for i in owed if i not in seen]
        entry = {"owed": len(owed), "missed": len(missed), "reconnects": c["reconnects"],
                 "resumes": c["resumes"]}
        if missed:  # what the missed tasks' terminal events were, to compare with the resumes
            entry["missed_terminal_events"] = subprocess.run(
                ["psql", a.database_url, "-qAtX", "-c",
                 "SELECT json_agg(json_build_object('task', task_id, 'event_id', id, 'at', "
                 "extract(epoch FROM created_at))) FROM task_events WHERE kind IN "
                 "('succeeded','failed','cancelled') AND task_id IN ("
                 + ",".join(f"'{i}'" for i in missed[:10]) + ")"],
                capture_output=True, text=True, check=True).stdout.strip()
        sse.append(entry)

    by_window = {}
    for t, op, status, latency in samples:
        w = window_of(t, latency, faults)
        k = by_window.setdefault(w, {"requests": 0, "5xx": 0, "failed_connections": 0})
        k["requests"] += 1
        k["5xx"] += 500 <= status < 600
        k["failed_connections"] += status == 0

    def pct(xs, q):
        xs = sorted(xs)
        return round(xs[min(len(xs) - 1, int(q * len(xs)))] * 1000, 2) if xs else None

    quiet = {op: [lat for t, o, s, lat in samples
                  if o == op and 200 <= s < 300 and window_of(t, lat, faults) == "none"]
             for op in ("post", "get", "run")}
    report = {
        "rate_per_s": a.rate,
        "seconds": a.seconds,
        "posted": sum(1 for _, o, _, _ in samples if o == "post"),
        "acked": len(acked),
        "graph_runs_acked": len(graph_tasks),
        "throughput_acked_per_s": round((len(acked) + len(graph_tasks)) / a.seconds, 1),
        "slots_offered_per_s": round(offered["slots_offered_per_s"], 1),
        "latency_ms_outside_faults": {op: {"p50": pct(v, 0.5), "p99": pct(v, 0.99), "n": len(v)}
                                      for op, v in quiet.items()},
        "by_window": by_window,
        "faults": [{"name": n, "seconds": round(e - s, 1)} for n, s, e in faults],
        "drain_seconds": round(drained, 1),
        "still_pending": pending,
        "reconciled": reconciled,
        "sse": sse,
    }
    ok = (reconciled["missing"] == 0 and reconciled["not_succeeded"] == 0
          and reconciled["wrong_result"] == 0 and reconciled["terminal_not_once"] == 0
          and reconciled["without_queued_or_started"] == 0
          and all(s["missed"] == 0 for s in sse)
          and all(v["5xx"] == 0 for w, v in by_window.items() if w not in ("postgres_restart",)))
    report["ok"] = ok
    print(json.dumps(report, indent=2))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
