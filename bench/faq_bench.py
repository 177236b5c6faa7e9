"""Time from POST /api/v1/tasks (kind faq) to the published document, for 20 questions.

Usage: python3 faq_bench.py BASE_URL EMAIL PASSWORD — prints each time and p50/p95, then
the median time of each graph node (the `{"timing": node, "ms": …}` events of each task,
read from its event stream once it finished) and what is left outside the nodes (the
queue hand-off, checkpoints, the poll).
Polls the task every 2 ms over one keep-alive connection (the poll adds at most that).
"""
import http.client
import json
import os
import statistics
import sys
import time
import urllib.parse

# Also the queries of crates/bench/src/keyword_bench.rs: one list, one file.
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "questions.txt")) as f:
    QUESTIONS = [line.strip() for line in f if line.strip()]


def node_times(url, token, task_id):
    """node -> ms, from a finished task's event stream (replayed from its first event)."""
    conn = http.client.HTTPConnection(url.hostname, url.port)
    conn.request("GET", f"/api/v1/tasks/{task_id}/events", None, {"authorization": f"Bearer {token}", "accept": "text/event-stream"})
    res = conn.getresponse()
    times, event = {}, None
    for raw in res:
        line = raw.decode().rstrip("\n")
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:") and event == "progress":
            inner = (json.loads(line[5:]).get("data") or {}).get("data") or {}
            if isinstance(inner, dict) and "timing" in inner:
                times[inner["timing"]] = times.get(inner["timing"], 0.0) + inner["ms"]
        elif line.startswith("data:") and event in ("succeeded", "failed", "cancelled"):
            break
    conn.close()
    return times


def main(base, email, password):
    url = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(url.hostname, url.port)

    def call(method, path, body=None, token=None):
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        res = conn.getresponse()
        data = res.read()
        return res.status, json.loads(data) if data else None

    s, login = call("POST", "/api/v1/auth/login", {"email": email, "password": password})
    assert s == 200, login
    token = login["access_token"]
    # A project of its own per run: its documents start empty (FAQ_WORK reuses the tenant).
    s, project = call("POST", "/api/v1/projects", {"name": f"bench-{int(time.time() * 1000)}"}, token)
    assert s == 201, project
    times, nodes = [], {}
    for q in QUESTIONS:
        start = time.perf_counter()
        s, task = call("POST", "/api/v1/tasks", {"kind": "faq", "input": {"question": q, "project_id": project["id"]}}, token)
        assert s == 201, task
        while True:
            s, t = call("GET", f"/api/v1/tasks/{task['id']}", None, token)
            if t["status"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.002)
        elapsed = time.perf_counter() - start
        assert t["status"] == "succeeded" and t["result"]["status"] == "published", t
        times.append(elapsed)
        per_node = node_times(url, token, task["id"])
        for n, ms in per_node.items():
            nodes.setdefault(n, []).append(ms)
        nodes.setdefault("(outside the nodes)", []).append(elapsed * 1000 - sum(per_node.values()))
        nodes_line = " ".join(f"{n}={ms:.0f}" for n, ms in per_node.items())
        print(f"{elapsed * 1000:8.1f} ms  {q}  [{nodes_line}]")
    times.sort()
    p95 = times[max(0, int(round(0.95 * len(times))) - 1)]
    print(f"p50 {statistics.median(times) * 1000:.1f} ms  p95 {p95 * 1000:.1f} ms  max {times[-1] * 1000:.1f} ms  ({len(times)} questions)")
    print("per node (median ms, max ms):")
    for n, ms in nodes.items():
        print(f"  {n:<22} {statistics.median(ms):8.1f} {max(ms):8.1f}")


main(*sys.argv[1:4])
