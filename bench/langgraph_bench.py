"""LangGraph side of bench/graph.sh: the same graphs as graph-bench, trivial nodes.

Per-step overhead of a 10-node linear graph and a 20-way fan-out/fan-in graph, with no
checkpointer, the in-memory saver and the SQLite saver in sync durability; then bytes
stored per step for a 500-step append-only conversation on the SQLite saver.
"""
import operator
import os
import sqlite3
import sys
import tempfile
import time
from typing import Annotated, TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph


class Lin(TypedDict):
    n: int


def linear(size):
    g = StateGraph(Lin)
    for i in range(size):
        g.add_node(f"n{i}", lambda s: {"n": s["n"] + 1})
    g.add_edge(START, "n0")
    for i in range(1, size):
        g.add_edge(f"n{i - 1}", f"n{i}")
    g.add_edge(f"n{size - 1}", END)
    return g


class Fan(TypedDict):
    results: Annotated[list, operator.add]
    total: int


def fanout(size):
    g = StateGraph(Fan)
    g.add_node("split", lambda s: {})
    for i in range(size):
        g.add_node(f"w{i}", (lambda i: lambda s: {"results": [i]})(i))
        g.add_edge("split", f"w{i}")
        g.add_edge(f"w{i}", "join")
    g.add_node("join", lambda s: {"total": len(s["results"])})
    g.add_edge(START, "split")
    g.add_edge("join", END)
    return g


def sqlite_conn(path):
    """The SqliteSaver's connection with the durability settings of our SQLite store (WAL,
    synchronous=NORMAL), so both sides pay for the same kind of commit."""
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def per_step_us(builder, saver, runs, steps, inp):
    app = builder.compile(checkpointer=saver)
    start = time.perf_counter()
    for i in range(runs):
        if saver is None:
            app.invoke(inp)
        else:
            app.invoke(inp, {"configurable": {"thread_id": f"t{i}"}}, durability="sync")
    return (time.perf_counter() - start) * 1e6 / (runs * steps)


class Talk(TypedDict):
    messages: Annotated[list, operator.add]
    turn: int


def talk(s):
    n = s.get("turn", 0)
    return {"messages": [{"role": "user", "content": f"message {n}: the quick brown fox jumps over the lazy dog"}], "turn": n + 1}


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    tmp = tempfile.mkdtemp()
    for name, builder, steps, inp in [("linear-10", linear(10), 10, {"n": 0}), ("fanout-20", fanout(20), 3, {"results": []})]:
        none = per_step_us(builder, None, runs, steps, inp)
        mem = per_step_us(builder, InMemorySaver(), runs, steps, inp)
        conn = sqlite_conn(os.path.join(tmp, f"{name}.db"))
        sql = per_step_us(builder, SqliteSaver(conn), runs, steps, inp)
        print(f"{name}: {runs} runs x {steps} steps; per step: no checkpointer {none:.1f} us, memory {mem:.1f} us, sqlite sync {sql:.1f} us")
    g = StateGraph(Talk)
    g.add_node("talk", talk)
    g.add_edge(START, "talk")
    g.add_conditional_edges("talk", lambda s: "talk" if s["turn"] < 500 else END, ["talk", END])
    conn = sqlite_conn(os.path.join(tmp, "conversation.db"))
    app = g.compile(checkpointer=SqliteSaver(conn))
    app.invoke({"turn": 0}, {"configurable": {"thread_id": "conversation"}, "recursion_limit": 1000}, durability="sync")
    rows = conn.execute(
        "SELECT length(checkpoint) + length(metadata) FROM checkpoints WHERE thread_id = 'conversation' ORDER BY checkpoint_id"
    ).fetchall()
    writes = conn.execute("SELECT coalesce(sum(length(value)), 0) FROM writes WHERE thread_id = 'conversation'").fetchone()[0]
    total = sum(r[0] for r in rows) + writes
    marks = ", ".join(f"step {i}: {rows[min(i, len(rows) - 1)][0]} B" for i in (10, 100, 250, 499))
    print(f"conversation-500 (sqlite): {total} bytes in {len(rows)} checkpoints, {total / len(rows):.0f} B/step on average; {marks}")


main()
