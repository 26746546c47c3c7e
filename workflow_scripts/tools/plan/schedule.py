"""Wall time of the grid on a cluster of a given size: list scheduling along the DAG.

A job starts when its dependencies are done and enough GPUs are free (its ``gpu`` resource);
among the ready jobs the one with the longest remaining path to the end of the DAG goes first (the
classic critical-path heuristic), and a smaller ready job may start on GPUs a larger one cannot use yet.
CPU jobs (data, reports; GPU count 0) never wait for GPUs. Queue waits, node fragmentation and failures
are not modelled: the result is a lower bound a real cluster approaches when the partition is free. A job
that asks for more GPUs than there are runs on all of them, proportionally longer.
"""
from __future__ import annotations

import heapq


def makespan(estimates, capacity: int) -> float:
    """Seconds from the first job's start to the last job's end with ``capacity`` devices."""
    if capacity < 1:
        raise SystemExit(f"--gpus-available must be >= 1, got {capacity}.")
    by_id = {e.job.id: e for e in estimates}
    users: dict[int, list[int]] = {i: [] for i in by_id}
    waiting = {}
    for e in estimates:
        deps = [d for d in e.job.deps if d in by_id]
        waiting[e.job.id] = len(deps)
        for d in deps:
            users[d].append(e.job.id)
    need = {i: (min(e.devices, capacity) if e.on_gpu else 0) for i, e in by_id.items()}
    # A job asking for more GPUs than the cluster has runs on all of them, proportionally longer.
    duration = {i: e.seconds * (e.devices / capacity if e.on_gpu and e.devices > capacity else 1.0)
                for i, e in by_id.items()}
    rank: dict[int, float] = {}
    for e in sorted(estimates, key=lambda e: e.job.id, reverse=True):   # ids are topological
        rank[e.job.id] = duration[e.job.id] + max((rank[u] for u in users[e.job.id]), default=0.0)
    ready = [i for i, n in waiting.items() if n == 0]
    running: list[tuple[float, int]] = []
    free, now, end = capacity, 0.0, 0.0
    while ready or running:
        ready.sort(key=lambda i: (-rank[i], i))
        started = []
        for i in ready:
            if need[i] <= free:
                free -= need[i]
                heapq.heappush(running, (now + duration[i], i))
                started.append(i)
        started_set = set(started)
        ready = [i for i in ready if i not in started_set]
        if not running:
            break
        now, done = heapq.heappop(running)
        end = max(end, now)
        free += need[done]
        for u in users[done]:
            waiting[u] -= 1
            if waiting[u] == 0:
                ready.append(u)
    return end
