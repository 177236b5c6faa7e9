"""Time from POST /api/v1/tasks (kind faq) to the published document, for 20 questions.

Usage: python3 faq_bench.py BASE_URL EMAIL PASSWORD — prints each time and p50/p95.
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
    s, project = call("POST", "/api/v1/projects", {"name": "bench"}, token)
    assert s == 201, project
    times = []
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
        print(f"{elapsed * 1000:8.1f} ms  {q}")
    times.sort()
    p95 = times[max(0, int(round(0.95 * len(times))) - 1)]
    print(f"p50 {statistics.median(times) * 1000:.1f} ms  p95 {p95 * 1000:.1f} ms  max {times[-1] * 1000:.1f} ms  ({len(times)} questions)")


main(*sys.argv[1:4])
