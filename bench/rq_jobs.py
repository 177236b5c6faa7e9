"""The no-op job the RQ side of bench/queue.sh runs."""


def noop():
    return None
