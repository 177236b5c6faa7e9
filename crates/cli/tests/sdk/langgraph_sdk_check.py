"""Drives a running MorningAI server with the official langgraph-sdk client, and checks
that its OpenAPI document (what generated clients are built from) is valid OpenAPI.

Usage: python langgraph_sdk_check.py URL OWNER_KEY REVIEWER_KEY  — exits non-zero on the first
failure. The reviewer is a second admin of the tenant: the approval graph's policy lets
nobody approve their own run, whichever API they answer it through.
"""
import asyncio
import json
import sys
import urllib.request

from openapi_spec_validator import validate

from langgraph_sdk import get_client


async def refused(call, status):
    """Awaits `call`, which must fail with HTTP `status`."""
    try:
        await call
    except Exception as e:  # httpx.HTTPStatusError, or the SDK's own error classes
        code = getattr(getattr(e, "response", None), "status_code", None)
        assert code == status or str(status) in str(e), repr(e)
        return
    raise AssertionError(f"expected HTTP {status}")


async def main(url, key, reviewer_key):
    client = get_client(url=url, api_key=key)
    reviewer = get_client(url=url, api_key=reviewer_key)

    assistants = await client.assistants.search()
    graphs = {a["graph_id"] for a in assistants}
    assert {"echo", "approval", "steps"} <= graphs, graphs
    echo = await client.assistants.get("echo")
    assert echo["graph_id"] == "echo", echo

    thread = await client.threads.create(metadata={"suite": "sdk"})
    tid = thread["thread_id"]
    assert (await client.threads.get(tid))["thread_id"] == tid

    # Stream a run: metadata first, then values and token deltas.
    parts = []
    async for part in client.runs.stream(
        tid, "echo", input={"messages": [{"role": "user", "content": "hello world"}]}, stream_mode=["values", "messages"]
    ):
        parts.append(part)
    assert parts[0].event == "metadata" and parts[0].data["run_id"], parts[0]
    events = [p.event for p in parts]
    assert "values" in events and "messages" in events, events
    values = [p.data for p in parts if p.event == "values"]
    assert values[-1]["messages"][-1] == {"role": "assistant", "content": "hello world"}, values[-1]
    deltas = "".join(p.data["content"] for p in parts if p.event == "messages")
    assert deltas == "hello world", deltas

    # Wait for a run: the final values.
    out = await client.runs.wait(tid, "echo", input={"messages": [{"role": "user", "content": "again"}]})
    assert out["messages"][-1]["content"] == "again", out
    assert len(out["messages"]) == 4, out

    # Interrupt, then resume with Command(resume=...).
    t2 = (await client.threads.create())["thread_id"]
    await client.runs.wait(t2, "approval", input={"topic": "Rust"})
    state = await client.threads.get_state(t2)
    assert state["next"] == ["review"], state
    assert state["interrupts"][0]["value"]["question"] == "Publish this draft?", state
    assert state["tasks"][0]["interrupts"], state
    assert (await client.threads.get(t2))["status"] == "interrupted"
    # The run's starter may not answer their own approval, not even through a resume.
    await refused(client.runs.wait(t2, "approval", command={"resume": {"approved": True}}), 403)
    assert (await client.threads.get(t2))["status"] == "interrupted"
    out = await reviewer.runs.wait(t2, "approval", command={"resume": {"approved": True}})
    assert out["status"] == "published", out
    assert (await client.threads.get(t2))["status"] == "idle"

    # History, runs, search, state update.
    history = await client.threads.get_history(t2, limit=50)
    assert len(history) == 4, [h["metadata"] for h in history]  # input, draft, review, publish
    assert history[0]["values"]["status"] == "published"
    runs = await client.runs.list(t2)
    assert len(runs) == 2 and {r["status"] for r in runs} == {"interrupted", "success"}, runs
    run = await client.runs.get(t2, runs[0]["run_id"])
    assert run["run_id"] == runs[0]["run_id"]
    found = await client.threads.search(metadata={"suite": "sdk"})
    assert [t["thread_id"] for t in found] == [tid], found
    # Rewriting state could step past the approval: the same policy applies.
    await refused(client.threads.update_state(t2, {"topic": "Go"}), 403)
    await reviewer.threads.update_state(t2, {"topic": "Go"})
    assert (await client.threads.get_state(t2))["values"]["topic"] == "Go"

    # Stateless run.
    out = await client.runs.wait(None, "echo", input={"messages": [{"role": "user", "content": "stateless"}]})
    assert out["messages"][-1]["content"] == "stateless", out

    # Create, then join.
    created = await client.runs.create(tid, "echo", input={"messages": [{"role": "user", "content": "joined"}]})
    joined = await client.runs.join(tid, created["run_id"])
    assert joined["messages"][-1]["content"] == "joined", joined

    # messages-tuple: token deltas as [message chunk, metadata] pairs, event "messages".
    t3 = (await client.threads.create())["thread_id"]
    parts = [p async for p in client.runs.stream(
        t3, "echo", input={"messages": [{"role": "user", "content": "tuple mode"}]}, stream_mode="messages-tuple")]
    chunks = [p.data for p in parts if p.event == "messages"]
    assert "".join(c[0]["content"] for c in chunks) == "tuple mode", chunks
    assert chunks[0][0]["type"] == "AIMessageChunk" and chunks[0][1]["langgraph_node"] == "respond", chunks[0]

    # interrupt_before="*": the run stops before the first node.
    t4 = (await client.threads.create())["thread_id"]
    await client.runs.wait(t4, "steps", input={"target": 2}, interrupt_before="*")
    state = await client.threads.get_state(t4)
    assert state["next"] == ["step"] and state["values"]["log"] == [], state
    # A run without input continues from the breakpoint (it does not start over).
    out = await client.runs.wait(t4, "steps", input=None)
    assert out["log"] == [1, 2], out

    await client.threads.delete(t2)
    try:
        await client.threads.get(t2)
        raise AssertionError("deleted thread still readable")
    except AssertionError:
        raise
    except Exception as e:  # NotFoundError in recent SDKs, httpx.HTTPStatusError in older ones
        assert type(e).__name__ == "NotFoundError" or "404" in str(e), repr(e)

    # The long-term store.
    store = client.store
    await store.put_item(["users", "u1", "notes"], "n1", {"text": "prefers short answers", "n": 1})
    await store.put_item(["users", "u1", "notes"], "n2", {"text": "works on the billing service", "n": 2})
    await store.put_item(["users", "u2"], "n3", {"text": "someone else"}, ttl=60)
    item = await store.get_item(["users", "u1", "notes"], "n1")
    assert item["value"] == {"text": "prefers short answers", "n": 1} and item["namespace"] == ["users", "u1", "notes"], item
    found = await store.search_items(["users", "u1"], filter={"n": 2})
    assert [i["key"] for i in found["items"]] == ["n2"], found
    found = await store.search_items(["users"], query="billing", limit=1)
    assert found["items"][0]["key"] == "n2" and "score" in found["items"][0], found
    spaces = await store.list_namespaces(prefix=["users"], max_depth=2)
    assert spaces["namespaces"] == [["users", "u1"], ["users", "u2"]], spaces
    await store.delete_item(["users", "u1", "notes"], "n1")
    try:
        await store.get_item(["users", "u1", "notes"], "n1")
        raise AssertionError("deleted item still readable")
    except AssertionError:
        raise
    except Exception as e:
        assert type(e).__name__ == "NotFoundError" or "404" in str(e), repr(e)
    print("langgraph-sdk: all checks passed")


def check_openapi(url):
    with urllib.request.urlopen(f"{url}/api/v1/openapi.json") as res:
        doc = json.load(res)
    validate(doc)  # raises on an invalid document, duplicate operation ids included
    assert "/threads/{id}/runs/stream" in doc["paths"], sorted(doc["paths"])
    print(f"openapi: valid, {len(doc['paths'])} paths")


check_openapi(sys.argv[1])
asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
