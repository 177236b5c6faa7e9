"""The seed's stack as bench/seed-stack.sh runs it: Flask behind Gunicorn (sync workers),
psycopg 3 on PostgreSQL with row-level security, a Redis Queue enqueue per task, HS256 JWT
bearer auth. Two routes, the same contract as ours: create a task (201) and read one.

Environment: SEED_DATABASE_URL (a role subject to RLS), REDIS_URL, SEED_JWT_SECRET.
"""

import json
import os
import uuid

import jwt
import psycopg
from flask import Flask, jsonify, request
from psycopg.types.json import Jsonb
from redis import Redis
from rq import Queue

app = Flask(__name__)
SECRET = os.environ["SEED_JWT_SECRET"]
queue = Queue("seed", connection=Redis.from_url(os.environ["REDIS_URL"]))
_conn = None


def db():
    """One connection per Gunicorn worker, opened after the fork."""
    global _conn
    if _conn is None or _conn.closed:
        _conn = psycopg.connect(os.environ["SEED_DATABASE_URL"])
    return _conn


def tenant():
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    try:
        claims = jwt.decode(header[7:], SECRET, algorithms=["HS256"])
        return str(uuid.UUID(claims["tenant_id"]))
    except (jwt.PyJWTError, KeyError, ValueError):
        return None


def problem(status, title):
    return jsonify({"status": status, "title": title}), status


@app.post("/api/v1/tasks")
def create_task():
    tid = tenant()
    if tid is None:
        return problem(401, "unauthorized")
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("kind"), str):
        return problem(422, "kind is required")
    task_id = uuid.uuid4()
    conn = db()
    with conn.transaction():
        cur = conn.cursor()
        cur.execute("SELECT set_config('app.tenant_id', %s, true)", (tid,))
        cur.execute(
            "INSERT INTO tasks (id, tenant_id, kind, status, input) VALUES (%s, %s, %s, 'queued', %s)"
            " RETURNING created_at",
            (task_id, tid, body["kind"], Jsonb(body.get("input", {}))),
        )
        created_at = cur.fetchone()[0]
    queue.enqueue("rq_jobs.noop", job_id=str(task_id))
    task = {"id": str(task_id), "kind": body["kind"], "status": "queued", "input": body.get("input", {})}
    return jsonify(task | {"created_at": created_at.isoformat()}), 201


@app.get("/api/v1/tasks/<task_id>")
def get_task(task_id):
    tid = tenant()
    if tid is None:
        return problem(401, "unauthorized")
    try:
        task_id = uuid.UUID(task_id)
    except ValueError:
        return problem(404, "no such task")
    conn = db()
    with conn.transaction():
        cur = conn.cursor()
        cur.execute("SELECT set_config('app.tenant_id', %s, true)", (tid,))
        cur.execute("SELECT id, kind, status, input, result, created_at FROM tasks WHERE id = %s", (task_id,))
        row = cur.fetchone()
    if row is None:
        return problem(404, "no such task")
    keys = ("id", "kind", "status", "input", "result", "created_at")
    return app.response_class(json.dumps(dict(zip(keys, row)), default=str), mimetype="application/json")
