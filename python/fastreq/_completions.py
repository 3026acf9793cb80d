"""Results as they complete: the iterators that
:meth:`FastRequests.as_completed`/``as_completed_sync`` and
``fastreq_as_completed``/``fastreq_as_completed_async`` return."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Optional, Type, TypeVar

from ._drive import WAIT_SLICE_MS, AsyncPump
from ._records import BatchRun
from ._encode import Plan
from ._handles import Closeable
from .models import Completion

#: Submits the batch.
Start = Callable[[], BatchRun]


class _Completions(Closeable):
    """Shared state of the as-completed iterators. ``close()`` cancels
    what is still running and releases the batch (and the client the
    iterator owns); the iterators call it when they end or fail."""

    def __init__(self, plan: Plan, start: Start, close_client: Optional[Callable[[], None]] = None) -> None:
        self._plan = plan
        self._start = start
        #: Closes the client at the end, for an iterator that owns it.
        self._close_client = close_client
        self._run: Optional[BatchRun] = None
        self._finished = plan.n == 0

    def _begin(self) -> BatchRun:
        self._run = self._start()
        return self._run

    def _next(self, run: Optional[BatchRun], end: Type[Exception]) -> Completion:
        """The next completion that run holds; when it has none left, close
        and raise end (StopIteration or StopAsyncIteration)."""
        if run is None or not run.completed:
            self.close()
            raise end
        idx = run.completed.popleft()
        plan = self._plan
        result = run.results[idx]
        run.results[idx] = None  # the iterator hands it over: do not keep it
        fd = run.failures.get(idx)
        key = plan.keys[idx] if plan.keys is not None else idx
        return Completion(idx, key, plan.urls[idx], result, fd.error if fd is not None else None)

    def close(self) -> None:
        """Cancel what is still running and release the batch."""
        run, self._run = self._run, None
        self._finished = True
        if run is not None:
            run.close()
        close_client, self._close_client = self._close_client, None
        if close_client is not None:
            close_client()

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
                self.close()
                raise

    def __iter__(self) -> "SyncCompletions":
        return self

    def __next__(self) -> Completion:
        run = self._run
        try:
            while run is not None and not run.completed and run.remaining > 0:
                run.pump(wait_ms=WAIT_SLICE_MS)  # waits with the GIL released, as run_sync
        except BaseException:
            self.close()
            raise
        return self._next(run, StopIteration)


class AsyncCompletions(_Completions):
    """Async iterator of :class:`Completion` as requests finish (see
    :meth:`FastRequests.as_completed`)."""

    _pump: Optional[AsyncPump] = None  # from the first __anext__

    def __aiter__(self) -> "AsyncCompletions":
        return self

    async def __anext__(self) -> Completion:
        run = self._run
        try:
            if run is None and not self._finished:
                run = self._begin()
                self._pump = AsyncPump(run, asyncio.get_running_loop(), wake_each=True)
                self._pump.start()
            while run is not None and not run.completed and run.remaining > 0:
                assert self._pump is not None
                await self._pump.wait()
        except BaseException:
            self.close()
            raise
        return self._next(run, StopAsyncIteration)

    def close(self) -> None:
        """Cancel what is still running and release the batch."""
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.stop()
        super().close()

    async def aclose(self) -> None:
        """Cancel what is still running and release the batch."""
        self.close()

    async def __aenter__(self) -> "AsyncCompletions":
        return self

    async def __aexit__(self, *args: Any) -> None:
        self.close()


#: Either iterator class.
C = TypeVar("C", SyncCompletions, AsyncCompletions)
