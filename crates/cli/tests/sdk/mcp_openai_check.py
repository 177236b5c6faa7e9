"""Drives a running MorningAI server with the official `mcp` and `openai` Python clients.

Usage: python mcp_openai_check.py URL SETUP_JSON — SETUP_JSON names the API keys (`owner`,
`reviewer` — a second admin —, `viewer`, and `other`, another tenant's owner) and `tree`, the
directory indexed into the owner's collection `gizmo`. The script adds a project, an assistant
that requires approval and a note to that collection, then checks. Exits non-zero on the
first failure; prints "all checks passed" at the end.
"""
import asyncio
import contextlib
import json
import math
import os
import sys
import urllib.request

import openai
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def rest(url, key, method, path, body=None):
    req = urllib.request.Request(
        url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")


def check_citation(tree, citation):
    """`source:start-end` names a file of the tree and lines it has."""
    source, lines = citation.rsplit(":", 1)
    start, end = (int(n) for n in lines.split("-"))
    with open(os.path.join(tree, source)) as f:
        length = len(f.read().splitlines())
    assert 1 <= start <= end <= length, (citation, length)


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


@contextlib.asynccontextmanager
async def Mcp(url, key):
    """One MCP client session with an API key."""
    async with create_mcp_http_client(headers={"Authorization": f"Bearer {key}"}) as http:
        async with streamable_http_client(url + "/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


def text_of(result):
    return "".join(c.text for c in result.content if getattr(c, "type", "") == "text")


async def check_mcp(url, s):
    tree, project = s["tree"], s["project"]
    question = "How are the flux capacitors calibrated?"
    async with Mcp(url, s["owner"]) as mcp:
        tools = {t.name: t for t in (await mcp.list_tools()).tools}
        assert set(tools) == {
            "search_memory", "ask", "get_task", "list_documents", "get_document",
            "codegen", "list_approvals", "decide_approval",
        }, set(tools)
        assert tools["ask"].input_schema["required"] == ["question", "project"], tools["ask"].input_schema

        found = await mcp.call_tool("search_memory", {"query": "flux capacitors calibrate", "k": 3})
        assert not found.is_error, text_of(found)
        hits = found.structured_content["hits"]
        assert hits and len(hits) <= 3, hits
        for h in hits:
            check_citation(tree, h["citation"])
        assert any(h["source"] == "src/lib.rs" for h in hits), hits

        progress = []

        async def on_progress(p, total, message):
            progress.append(message)

        asked = await mcp.call_tool(
            "ask", {"question": question, "project": project}, progress_callback=on_progress
        )
        assert not asked.is_error, text_of(asked)
        doc_text = text_of(asked)
        assert doc_text.startswith(f"# {question}\n"), doc_text
        citations = asked.structured_content["citations"]
        assert citations, asked.structured_content
        for c in citations:
            check_citation(tree, c)
        assert any(m and m.startswith("progress") for m in progress), progress
        assert progress[-1] == "succeeded", progress
        task_id = asked.structured_content["task_id"]

        task = await mcp.call_tool("get_task", {"task_id": task_id})
        assert task.structured_content["status"] == "succeeded", task.structured_content
        assert len(task.structured_content["trace_id"]) == 32, task.structured_content

        docs = (await mcp.call_tool("list_documents", {"project": project})).structured_content["documents"]
        doc = next(d for d in docs if d["slug"] == "how-are-the-flux-capacitors-calibrated")
        got = await mcp.call_tool("get_document", {"document_id": doc["id"]})
        assert text_of(got) == doc_text
        bad = await mcp.call_tool("get_document", {"document_id": doc["id"], "version": 99})
        assert bad.is_error and "versions 1 to" in text_of(bad), text_of(bad)
        wrong = await mcp.call_tool("get_document", {"document_id": "not-a-uuid"})
        assert wrong.is_error and "invalid arguments" in text_of(wrong), text_of(wrong)

        resources = (await mcp.list_resources()).resources
        uri = f"morningai://documents/{project}/{doc['slug']}"
        assert uri in [str(r.uri) for r in resources], resources
        read = await mcp.read_resource(uri)
        assert read.contents[0].text == doc_text

        # Code generation needs a chat model; this tenant has none: a clear tool error.
        cg = await mcp.call_tool(
            "codegen", {"request": "Make calibrate return false", "project": project, "path": tree}
        )
        assert cg.is_error and "chat model" in text_of(cg), text_of(cg)

        # An assistant that wants approval: the run stops at a pending approval.
        pending = await mcp.call_tool(
            "ask",
            {"question": "What does the gizmo do at night?", "project": project, "assistant_id": s["approving_assistant"]},
        )
        assert not pending.is_error, text_of(pending)
        assert pending.structured_content["result"]["run_status"] == "interrupted", pending.structured_content
        approvals = (await mcp.call_tool("list_approvals", {"status": "pending"})).structured_content["approvals"]
        assert len(approvals) == 1, approvals
        approval_id = approvals[0]["id"]

    async with Mcp(url, s["viewer"]) as viewer:
        refused = await viewer.call_tool("decide_approval", {"approval_id": approval_id, "approved": True})
        assert refused.is_error and "forbidden" in text_of(refused), text_of(refused)
        refused = await viewer.call_tool("ask", {"question": question, "project": project})
        assert refused.is_error and "forbidden" in text_of(refused), text_of(refused)

    async with Mcp(url, s["reviewer"]) as reviewer:
        decided = await reviewer.call_tool(
            "decide_approval", {"approval_id": approval_id, "approved": True, "comment": "fine"}
        )
        assert not decided.is_error, text_of(decided)
        assert decided.structured_content["status"] == "approved", decided.structured_content

    async with Mcp(url, s["other"]) as other:
        assert (await other.list_resources()).resources == []
        docs = (await other.call_tool("list_documents", {})).structured_content["documents"]
        assert docs == [], docs
        foreign = await other.call_tool("get_document", {"document_id": doc["id"]})
        assert foreign.is_error and "not found" in text_of(foreign), text_of(foreign)
        foreign = await other.call_tool("get_task", {"task_id": task_id})
        assert foreign.is_error and "not found" in text_of(foreign), text_of(foreign)
        try:
            await other.read_resource(uri)
        except Exception as e:  # the SDK raises McpError
            assert "no published document" in str(e), repr(e)
        else:
            raise AssertionError("another tenant read the document")
        found = await other.call_tool("search_memory", {"query": "flux capacitors"})
        assert found.structured_content["hits"] == [], found.structured_content
    print("mcp: tools, progress, resources, roles and tenancy checked")


def check_openai(url, s):
    tree, question = s["tree"], "How are the flux capacitors calibrated?"
    client = openai.OpenAI(base_url=url + "/v1", api_key=s["owner"])
    ids = [m.id for m in client.models.list()]
    assert "faq" in ids and s["approving_assistant"] in ids and s["embed_model"] in ids, ids

    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": question}]
    whole = client.chat.completions.create(model="faq", messages=messages)
    answer = whole.choices[0].message.content
    assert "calibrate" in answer, answer
    assert whole.system_fingerprint == "morningai-extractive", whole.system_fingerprint
    extension = whole.model_extra["morningai"]
    assert extension["generated_by"] == "extractive" and extension["citations"], extension
    for c in extension["citations"]:
        check_citation(tree, c)
    assert whole.usage.total_tokens == 0, whole.usage  # no model was called

    chunks = list(
        client.chat.completions.create(
            model="faq", messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == answer, (streamed, answer)
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1, "streamed in pieces"
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert len(finals) == 1 and finals[0].model_extra["morningai"]["citations"] == extension["citations"]
    assert chunks[-1].usage is not None and chunks[-1].choices == [], chunks[-1]

    # Embeddings are the memory's own vectors: their cosine is the dense search's score.
    text, query = s["note_text"], "When does the gizmo hum?"
    vectors = client.embeddings.create(model=s["embed_model"], input=[text, query]).data
    assert [len(v.embedding) for v in vectors] == [384, 384]
    floats = client.embeddings.create(model=s["embed_model"], input=text, encoding_format="float").data
    assert max(abs(a - b) for a, b in zip(floats[0].embedding, vectors[0].embedding)) < 1e-6
    hits = rest(url, s["owner"], "POST", "/api/v1/memory/search", {"query": query, "mode": "dense", "k": 10})["hits"]
    score = next(h["score"] for h in hits if h["source"] == s["note_source"])
    assert abs(cosine(vectors[0].embedding, vectors[1].embedding) - score) < 1e-3, score

    # Bad input, as OpenAI clients expect it.
    try:
        client.chat.completions.create(model="no-such-assistant", messages=messages)
        raise AssertionError("unknown model accepted")
    except openai.NotFoundError as e:
        assert e.code == "model_not_found", e.body
    try:
        client.chat.completions.create(model="faq", messages=[{"role": "user", "content": "x" * 300_000}])
        raise AssertionError("oversize conversation accepted")
    except (openai.BadRequestError, openai.APIStatusError) as e:
        assert e.status_code in (400, 413), e
    try:
        client.chat.completions.create(model="faq", messages=[{"role": "assistant", "content": "hi"}])
        raise AssertionError("a conversation without a question accepted")
    except openai.BadRequestError as e:
        assert e.body["param"] == "messages", e.body
    try:
        openai.OpenAI(base_url=url + "/v1", api_key="mai_wrong").models.list()
        raise AssertionError("a wrong key accepted")
    except openai.AuthenticationError as e:
        assert e.status_code == 401
    other = openai.OpenAI(base_url=url + "/v1", api_key=s["other"])
    assert s["approving_assistant"] not in [m.id for m in other.models.list()]
    try:
        other.chat.completions.create(model=s["approving_assistant"], messages=messages)
        raise AssertionError("another tenant's assistant answered")
    except openai.NotFoundError:
        pass
    print("openai: models, completions (whole and streamed), embeddings and errors checked")


def prepare(url, s):
    """What the checks need beyond the indexed tree, made through the REST API."""
    owner = s["owner"]
    s["project"] = rest(url, owner, "POST", "/api/v1/projects", {"name": "Gizmo"})["id"]
    s["approving_assistant"] = rest(
        url, owner, "POST", "/api/v1/assistants",
        {"graph_id": "faq", "name": "Reviewed docs", "config": {"require_approval": True}},
    )["assistant_id"]
    collections = rest(url, owner, "GET", "/api/v1/memory/collections")["items"]
    gizmo = next(c["id"] for c in collections if c["name"] == "gizmo")
    s["note_source"], s["note_text"] = "notes.txt", "The gizmo hums quietly every night at midnight."
    with open(os.path.join(s["tree"], s["note_source"]), "w") as f:
        f.write(s["note_text"] + "\n")
    rest(url, owner, "POST", f"/api/v1/memory/collections/{gizmo}/items",
         {"source": s["note_source"], "text": s["note_text"]})
    models = rest(url, owner, "GET", "/v1/models")["data"]
    s["embed_model"] = next(m["id"] for m in models if m.get("dimensions") == 384)


def main(url, setup):
    s = json.loads(setup)
    prepare(url, s)
    asyncio.run(check_mcp(url, s))
    check_openai(url, s)
    print("all checks passed")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
