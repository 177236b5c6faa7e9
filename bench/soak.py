"""Load, SSE clients and the final reconciliation of bench/soak.sh (standard library only).

Posts echo tasks (and, every tenth slot, a small graph run on a new thread) at a fixed rate through the load balancer (each with an idempotency key, so
a request the balancer retries on another server creates one task) and reads one back after
each post; SSE clients follow the tenant's event stream and resume with Last-Event-ID whenever a
connection drops. After the load it waits for every acknowledged task to finish, then
reconciles against PostgreSQL (psql): every task the API acknowledged with 2xx must be
`succeeded` with its input as its result, with exactly one terminal event and its queued and
started events; every SSE client must have seen the terminal event of every task created
while it was attached. Prints one JSON report; exit code 1 when reconciliation fails.
"""

import argparse
import http.client
import json
import random
import subprocess
import sys
import threading
import time
import urllib.parse


def request(base, method, path, key, body=None, timeout=10):
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    headers = {"x-api-key": key}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=headers)
        res = conn.getresponse()
        payload = res.read()
        return res.status, payload
    finally:
        conn.close()


class Load:
    def __init__(self, base, key, rate, seconds, threads, assistant):
        self.base, self.key, self.rate, self.seconds = base, key, rate, seconds
        self.threads, self.assistant = threads, assistant
        self.lock = threading.Lock()
        self.next = 0
        self.acked = []  # (id, n, t_post)
        self.graph_tasks = []  # task ids of acknowledged graph runs
        self.samples = []  # (t, op, status, latency_s)

    def graph_run(self, i):
        """A small graph run (every tenth iteration): a thread, then a run on it."""
        t0 = time.time()
        try:
            status, payload = request(self.base, "POST", "/threads", self.key, {})
            if status == 200:
                thread = json.loads(payload)["thread_id"]
                status, payload = request(self.base, "POST", f"/threads/{thread}/runs", self.key,
                                          {"assistant_id": self.assistant,
                                           "input": {"topic": f"soak {i}"}})
        except OSError:
            status, payload = 0, b""
        with self.lock:
            self.samples.append((t0, "run", status, time.time() - t0))
            if status == 200:
                self.graph_tasks.append(json.loads(payload)["task_id"])

    def run(self):
        self.start = time.time()
        ts = [threading.Thread(target=self.worker, daemon=True) for _ in range(self.threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    def worker(self):
        while True:
            with self.lock:
                i = self.next
                self.next += 1
            due = self.start + i / self.rate
            # Bounded in time: a driver that falls behind the rate stops at the end too.
            if due - self.start >= self.seconds or time.time() - self.start >= self.seconds:
                return
            pause = due - time.time()
            if pause > 0:
                time.sleep(pause)
            if i % 10 == 9:
                self.graph_run(i)
                continue
            t0 = time.time()
            try:
                status, payload = request(self.base, "POST", "/api/v1/tasks", self.key,
                                          {"kind": "echo", "input": {"n": i},
                                           "idempotency_key": f"soak-{i}"})
            except OSError:
                status, payload = 0, b""
            t1 = time.time()
            with self.lock:
                self.samples.append((t0, "post", status, t1 - t0))
                if 200 <= status < 300:
                    self.acked.append((json.loads(payload)["id"], i, t0))
                known = self.acked[random.randrange(len(self.acked))][0] if self.acked else None
            if known:
                t0 = time.time()
                try:
                    status, _ = request(self.base, "GET", f"/api/v1/tasks/{known}", self.key)
                except OSError:
                    status = 0
                with self.lock:
                    self.samples.append((t0, "get", status, time.time() - t0))


class SseClient(threading.Thread):
    """Follows GET /api/v1/events, resuming after the last event id it saw."""

    def __init__(self, base, key, stop):
        super().__init__(daemon=True)
        self.base, self.key, self.stop = base, key, stop
        self.attached_at = None
        self.last_id = None
        self.terminal = set()
        self.reconnects = 0

    def run(self):
        u = urllib.parse.urlsplit(self.base)
        while not self.stop.is_set():
            headers = {"x-api-key": self.key, "accept": "text/event-stream"}
            if self.last_id is not None:
                headers["last-event-id"] = str(self.last_id)
            try:
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
                conn.request("GET", "/api/v1/events", headers=headers)
                res = conn.getresponse()
                if res.status != 200:
                    raise OSError(f"HTTP {res.status}")
                if self.attached_at is None:
                    self.attached_at = time.time()
                event_id, data = None, None
                while not self.stop.is_set():
                    line = res.readline()
                    if not line:
                        raise OSError("stream closed")
                    line = line.decode().rstrip("\n")
                    if line.startswith("id:"):
                        event_id = int(line[3:].strip())
                    elif line.startswith("data:"):
                        data = json.loads(line[5:].strip())
                    elif line == "" and data is not None:
                        if data["kind"] in ("succeeded", "failed", "cancelled"):
                            self.terminal.add(data["task_id"])
                        self.last_id = event_id
                        event_id, data = None, None
            except (OSError, http.client.HTTPException, ValueError):
                if not self.stop.is_set():
                    self.reconnects += 1
                    time.sleep(0.5)


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
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--sse", type=int, default=4)
    p.add_argument("--faults", required=True, help="file: name start end (epoch s) per line")
    p.add_argument("--drain", type=float, default=180)
    a = p.parse_args()

    stop = threading.Event()
    clients = [SseClient(a.base, a.key, stop) for _ in range(a.sse)]
    for c in clients:
        c.start()
    time.sleep(1)
    load = Load(a.base, a.key, a.rate, a.seconds, a.threads, a.assistant)
    load.run()
    ended = time.time()

    # Drain: every acknowledged task terminal, then give the streams a moment.
    graph_ids = "".join(f"{i}\tgraph\n" for i in load.graph_tasks)
    all_ids = "".join(f"{i}\techo\n" for i, _, _ in load.acked) + graph_ids
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
    stop.set()

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
              'graph_tasks_in_database', (SELECT count(*) FROM tasks WHERE kind = 'graph_run'),
              'started_more_than_once', (SELECT count(*) FROM acked a WHERE (SELECT count(*) FROM task_events e
                               WHERE e.task_id = a.id AND e.kind = 'started') > 1))"""],
        input=all_ids, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    reconciled = json.loads(check)

    faults = []
    for line in open(a.faults):
        name, start, end = line.split()
        faults.append((name, float(start), float(end)))

    sse = []
    for c in clients:
        owed = [i for i, _, t in load.acked if c.attached_at and t >= c.attached_at + 2]  # echo tasks
        missed = [i for i in owed if i not in c.terminal]
        sse.append({"owed": len(owed), "missed": len(missed), "reconnects": c.reconnects})

    by_window = {}
    for t, op, status, latency in load.samples:
        w = window_of(t, latency, faults)
        k = by_window.setdefault(w, {"requests": 0, "5xx": 0, "failed_connections": 0})
        k["requests"] += 1
        k["5xx"] += 500 <= status < 600
        k["failed_connections"] += status == 0

    def pct(xs, q):
        xs = sorted(xs)
        return round(xs[min(len(xs) - 1, int(q * len(xs)))] * 1000, 2) if xs else None

    quiet = {op: [lat for t, o, s, lat in load.samples
                  if o == op and 200 <= s < 300 and window_of(t, lat, faults) == "none"]
             for op in ("post", "get", "run")}
    report = {
        "rate_per_s": a.rate,
        "seconds": a.seconds,
        "posted": sum(1 for _, o, _, _ in load.samples if o == "post"),
        "acked": len(load.acked),
        "graph_runs_acked": len(load.graph_tasks),
        "throughput_acked_per_s": round(len(load.acked) / a.seconds, 1),
        "slots_offered_per_s": round(load.next / a.seconds, 1),
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
