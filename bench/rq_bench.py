"""RQ side of bench/queue.sh.

    rq_bench.py fill N     enqueue N no-op jobs with Queue.enqueue; print jobs/s
    rq_bench.py span       jobs/s from the first job's start to the last job's end,
                           read from RQ's own finished-job records (worker start-up excluded,
                           as on our side)
"""
import os
import sys
import time

from redis import Redis
from rq import Queue
from rq.job import Job
from rq.registry import FinishedJobRegistry

from rq_jobs import noop

conn = Redis.from_url(os.environ["REDIS_URL"])
queue = Queue("bench", connection=conn)

if sys.argv[1] == "fill":
    n = int(sys.argv[2])
    start = time.perf_counter()
    for _ in range(n):
        queue.enqueue(noop)
    print(f"enqueued {n} jobs: {n / (time.perf_counter() - start):.0f} jobs/s")
elif sys.argv[1] == "span":
    ids = FinishedJobRegistry(queue=queue).get_job_ids()
    jobs = [j for j in Job.fetch_many(ids, connection=conn) if j is not None]
    first = min(j.started_at for j in jobs)
    last = max(j.ended_at for j in jobs)
    secs = (last - first).total_seconds()
    print(f"drained {len(jobs)} jobs: {len(jobs) / secs:.0f} jobs/s")
    conn.flushdb()
