"""Results as they complete: the iterators that
:meth:`FastRequests.as_completed`/``as_completed_sync`` and
``fastreq_as_completed``/``fastreq_as_completed_async`` return."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Optional, Tuple, TypeVar

from . import _ffi
from ._batch import AsyncPump, BatchRun
from ._encode import Plan
from ._handles import check_rc
from .models import Completion

#: Submits the batch: its BatchRun and progress reporter (or None).
Start = Callable[[], Tuple[BatchRun, Any]]


class _Completions:
    """Shared state of the as-completed iterators."""

    def __init__(self, plan: Plan, start: Start, close_client: Optional[Callable[[], None]] = None) -> None:
        self._plan = plan
        self._start = start
        #: Closes the client at the end, for an iterator that owns it.
        self._close_client = close_client
        self._run: Optional[BatchRun] = None
        self._reporter: Any = None
        self._finished = plan.n == 0

    def _begin(self) -> BatchRun:
        self._run, self._reporter = self._start()
        return self._run

    def _end_client(self) -> None:
        close, self._close_client = self._close_client, None
        if close is not None:
            close()

    def _completion(self, run: BatchRun, idx: int) -> Completion:
        plan = self._plan
        result = run.results[idx]
        run.results[idx] = None  # the iterator hands it over: do not keep it
        fd = run.failures.get(idx)
        key = plan.keys[idx] if plan.keys is not None else idx
        return Completion(idx, key, plan.urls[idx], result, fd.error if fd is not None else None)

    def _release(self, cancel: bool) -> None:
        run, self._run = self._run, None
        self._finished = True
        if run is not None:
            run.close(cancel)
        rep, self._reporter = self._reporter, None
        if rep is not None:
            rep.close()

    @property
    def total(self) -> int:
        return self._plan.n


class SyncCompletions(_Completions):
    """Iterator of :class:`Completion` as requests finish (see
    :meth:`FastRequests.as_completed_sync`)."""

    def __init__(self, plan: Plan, start: Start, close_client: Optional[Callable[[], None]] = None) -> None:
        super().__init__(plan, start, close_client)
        if not self._finished:
            try:
                self._begin()
            except BaseException:
                self._finished = True
                self._end_client()
                raise

    def __iter__(self) -> "SyncCompletions":
        return self

    def __next__(self) -> Completion:
        run = self._run
        if run is None:
            self.close()
            raise StopIteration
        try:
            if not run.completed:
                wait = _ffi.lib().batch_wait
                while not run.completed and run.remaining > 0:
                    n = wait(run.h, 100)
                    if n > 0:
                        run.pump()
                    elif n < 0:
                        check_rc(n, "fastreq_batch_wait")
        except BaseException:
            self.close()
            raise
        if run.completed:
            return self._completion(run, run.completed.popleft())
        self.close()
        raise StopIteration

    def close(self) -> None:
        """Cancel what is still running and release the batch."""
        self._release(cancel=True)
        self._end_client()

    def __enter__(self) -> "SyncCompletions":
        return self

    def __exit__(self, *args: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover
            pass


class AsyncCompletions(_Completions):
    """Async iterator of :class:`Completion` as requests finish (see
    :meth:`FastRequests.as_completed`)."""

    def __init__(self, plan: Plan, start: Start, close_client: Optional[Callable[[], None]] = None) -> None:
        super().__init__(plan, start, close_client)
        self._pump: Optional[AsyncPump] = None

    def __aiter__(self) -> "AsyncCompletions":
        return self

    async def __anext__(self) -> Completion:
        if self._finished and self._run is None:
            self._close()
            raise StopAsyncIteration
        try:
            run = self._run
            if run is None:
                run = self._begin()
                self._pump = AsyncPump(run, asyncio.get_running_loop(), wake_each=True)
                self._pump.start()
            assert self._pump is not None
            while not run.completed and run.remaining > 0:
                await self._pump.wait()
        except BaseException:
            self._close()
            raise
        if run.completed:
            return self._completion(run, run.completed.popleft())
        self._close()
        raise StopAsyncIteration

    def _close(self) -> None:
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.stop()
        self._release(cancel=True)
        self._end_client()

    async def aclose(self) -> None:
        """Cancel what is still running and release the batch."""
        self._close()

    async def __aenter__(self) -> "AsyncCompletions":
        return self

    async def __aexit__(self, *args: Any) -> None:
        self._close()

    def __del__(self) -> None:
        try:
            self._close()
        except Exception:  # pragma: no cover
            pass


#: Either iterator class.
C = TypeVar("C", SyncCompletions, AsyncCompletions)
