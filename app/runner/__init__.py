"""The run pool. Its public face is Runner (facade.py); inside, one job per module:

- dispatch.py: the dispatcher thread and the fair pick of which queued run goes to a free worker;
- worker.py: the worker, always the one that claims: claim -> execute (or grade) -> finish -> end;
- capacity.py: the workers of each lane and the runs this process holds;
- moves.py: the one observer of a status move (publish, count, log);
- reaper.py: ends the runs of engine processes that died;
- job.py: the plain data a worker is handed.
"""
from .facade import Runner
from .job import Job

__all__ = ["Job", "Runner"]
