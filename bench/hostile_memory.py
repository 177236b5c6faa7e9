"""The server's memory under hostile load: resident set size (VmRSS) of a running
`morningai serve` before anything, after 1,000 SSE streams opened and closed, after runaway
graph runs stopped at the server's ceilings, and after decompression-bomb imports.

Usage: python3 bench/hostile_memory.py URL PID   (bench/hostile-memory.sh starts the server)
"""
import io
import json
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile

URL, PID = sys.argv[1], int(sys.argv[2])


def rss_mib():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def call(method, path, token=None, body=None, raw=None, ctype="application/json", timeout=60):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(URL + path, data=data, method=method)
    if data is not None:
        req.add_header("content-type", ctype)
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def settle():
    time.sleep(3)
    return rss_mib()


token = call("POST", "/api/v1/auth/signup", body={"email": "mem@example.com", "password": "memory-bench-pw"})[1]["access_token"]
rows = [("start", rss_mib())]

# 1,000 SSE streams: each opened, its first bytes read, then closed by the client.
def open_and_close(n):
    for _ in range(n):
        req = urllib.request.Request(URL + "/api/v1/events", headers={"authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 200 and r.headers["content-type"].startswith("text/event-stream")

threads = [threading.Thread(target=open_and_close, args=(50,)) for _ in range(20)]
for t in threads:
    t.start()
for t in threads:
    t.join()
rows.append(("after 1,000 SSE streams opened and closed", settle()))

# Runaway graphs: a loop that appends 2 KB per step, run to the server's ceilings.
status, project = call("POST", "/api/v1/graphs", token, {"name": "spin", "definition": {
    "channels": {"log": {"reducer": "append"}},
    "nodes": {"spin": {"type": "set", "config": {"channel": "log", "value": "x" * 2000}}},
    "edges": [{"from": "__start__", "to": "spin"}, {"from": "spin", "to": "spin"}]}})
assert status == 201, (status, project)
for _ in range(5):
    tid = call("POST", "/threads", token, {})[1]["thread_id"]
    status, out = call("POST", f"/threads/{tid}/runs/wait", token,
                       {"assistant_id": "custom:spin", "input": {}, "config": {"recursion_limit": 1000}}, timeout=900)
    assert status == 200, (status, out)
rows.append(("after 5 runaway runs stopped at a ceiling", settle()))

# Decompression bombs: 8 MiB of one byte per entry, a few KiB on the wire.
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    for i in range(20):
        z.writestr(f"docs/guide/bomb{i}.md", "a" * (8 << 20))
bomb = buf.getvalue()
status, proj = call("POST", "/api/v1/projects", token, {"name": "bombs"})
assert status == 201, (status, proj)
for _ in range(20):
    status, out = call("POST", f"/api/v1/documents/import?project_id={proj['id']}", token,
                       raw=bomb, ctype="application/zip")
    assert status == 422, (status, out)
rows.append((f"after 20 bomb imports ({len(bomb) // 1024} KiB → 160 MiB each), refused", settle()))

print("| state | server RSS (MiB) |")
print("|---|---:|")
for name, mib in rows:
    print(f"| {name} | {mib:.1f} |")
