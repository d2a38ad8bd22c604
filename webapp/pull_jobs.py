"""Pulls started from the Hosted models page: each runs `hearth pull`'s code in a thread, watched and cancellable.

Server-owned state (the page polls it through htmx). Only the server's owner may start or cancel one:
see webapp.views.pulls for the same-origin and token checks.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from webapp.pull import PullCancelled, PullError, hub_source, pull, url_source

# Finished jobs kept for the page to show, newest first.
KEEP_FINISHED = 10


@dataclass
class PullJob:
    """One pull: what it is fetching, how far it got, how it ended."""

    id: int
    source: str
    endpoint: str | None
    state: str = "running"  # running, done, failed, cancelled
    progress: str = "listing the repository"
    message: str = ""
    model_id: str | None = None
    started: float = field(default_factory=time.time)
    cancel: threading.Event = field(default_factory=threading.Event)


class PullJobs:
    """The pulls of one server."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = models_dir
        self._jobs: dict[int, PullJob] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def start(self, source: str, endpoint: str | None = None) -> PullJob:
        """Begin pulling source (a repo id at endpoint, or a model directory's URL) in the background."""
        job = PullJob(next(self._ids), source, endpoint)
        with self._lock:
            self._jobs[job.id] = job
        threading.Thread(target=self._run, args=(job,), name=f"pull {source}", daemon=True).start()
        return job

    def get(self, job_id: int) -> PullJob | None:
        return self._jobs.get(job_id)

    def all(self) -> list[PullJob]:
        """Running pulls and the last few finished ones, newest first."""
        jobs = sorted(self._jobs.values(), key=lambda job: job.id, reverse=True)
        finished = [job for job in jobs if job.state != "running"]
        with self._lock:
            for old in finished[KEEP_FINISHED:]:
                self._jobs.pop(old.id, None)
        return [job for job in jobs if job.state == "running" or job in finished[:KEEP_FINISHED]]

    def _run(self, job: PullJob) -> None:
        def say(line: str) -> None:
            job.progress = line

        try:
            if job.source.startswith(("http://", "https://")):
                remote = url_source(job.source)
            else:
                remote = hub_source(job.source, job.endpoint)
            job.model_id = remote.repo_id
            result = pull(remote, self.models_dir, progress=say, cancel=job.cancel)
            job.state, job.message = "done", f"{result.model_id} is hosted ({result.total_bytes / 1e6:.1f} MB)"
        except PullCancelled:
            job.state, job.message = "cancelled", "cancelled: the files fetched so far are kept for a later pull"
        except PullError as exc:
            job.state, job.message = "failed", str(exc)
