"""Where the work of a sweep runs: a local process pool, or an existing Ray cluster.

Both take a top-level function and a list of argument tuples and yield ``(index, result)`` as
results come in. The functions (:mod:`bitfab.flows.explore.runner`) never raise for a failing
point; an exception here is a crashed worker and stops the sweep (finished points stay cached).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from bitfab.errors import BitfabError


class LocalPool:
    """``jobs`` worker processes (spawned: each imports bitfab afresh, torch uses 1 thread)."""

    def __init__(self, jobs: int) -> None:
        if jobs < 1:
            raise BitfabError(f"--jobs {jobs}: must be at least 1")
        self.jobs = jobs
        self._ex: cf.ProcessPoolExecutor | None = None

    def __enter__(self) -> LocalPool:
        ctx = multiprocessing.get_context("spawn")
        self._ex = cf.ProcessPoolExecutor(max_workers=self.jobs, mp_context=ctx)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._ex is not None:
            self._ex.shutdown(wait=exc[0] is None, cancel_futures=True)
            self._ex = None

    def map_unordered(
        self, fn: Callable[..., Any], args: Sequence[tuple]
    ) -> Iterator[tuple[int, Any]]:
        assert self._ex is not None, "use LocalPool as a context manager"
        futs = {self._ex.submit(fn, *a): i for i, a in enumerate(args)}
        try:
            for f in cf.as_completed(futs):
                yield futs[f], f.result()
        finally:
            for f in futs:
                f.cancel()

    def describe(self) -> str:
        return f"local pool, {self.jobs} worker{'s' if self.jobs > 1 else ''}"


class RayPool:
    """Tasks on the Ray cluster at ``address`` (``ray.init(address=...)``; the cluster's
    nodes need the same bitfab install and must see ``DIR`` and the model cache at the same
    paths). One CPU per task. Ray is an optional extra: ``pip install 'bitfab[ray]'``."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._ray = None
        self._owned = False

    def __enter__(self) -> RayPool:
        try:
            import ray
        except ImportError:
            raise BitfabError(
                "--ray: Ray is not installed; pip install 'bitfab[ray]' (ray==2.60.0)"
            ) from None
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, log_to_driver=False, logging_level="ERROR")
            except (ConnectionError, RuntimeError, ValueError) as e:
                msg = str(e).splitlines()[0] if str(e) else type(e).__name__
                raise BitfabError(
                    f"--ray {self.address}: cannot connect to a Ray cluster ({msg}); start one "
                    "with 'ray start --head' and give its address (host:port or auto)"
                ) from None
            self._owned = True
        self._ray = ray
        return self

    def __exit__(self, *exc: object) -> None:
        if self._ray is not None and self._owned:
            self._ray.shutdown()
        self._ray = None

    def map_unordered(
        self, fn: Callable[..., Any], args: Sequence[tuple]
    ) -> Iterator[tuple[int, Any]]:
        ray = self._ray
        assert ray is not None, "use RayPool as a context manager"
        remote = ray.remote(num_cpus=1, max_retries=0)(fn)
        refs = {remote.remote(*a): i for i, a in enumerate(args)}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    yield refs[ref], ray.get(ref)
        finally:
            for ref in pending:
                ray.cancel(ref)

    def describe(self) -> str:
        res = self._ray.cluster_resources() if self._ray else {}
        return f"Ray cluster {self.address} ({int(res.get('CPU', 0))} CPUs)"
