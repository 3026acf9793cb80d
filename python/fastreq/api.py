"""The module-level functions: fastreq(), fastreq_async() and the
as-completed iterators fastreq_as_completed() and
fastreq_as_completed_async().

Each builds a :class:`~fastreq.client.FastRequests` from the client
parameters, runs one call with the request parameters and closes the
client. Their parameters are those of :class:`~fastreq._params.OneShotParams`;
fastreq() and fastreq_async() are overloaded on what they return (see
:mod:`fastreq._params`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, overload

from ._completions import AsyncCompletions, C, SyncCompletions
from ._params import OneShotParams, RequestSettings, signature_of, split_one_shot
from .client import FastRequests

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Unpack

    from ._kwargs import OneShotKeyed, OneShotKwargs, OneShotParsed, OneShotTyped
    from ._params import URLs, AsBuffer, AsContent, AsResponse, AsStream, AsText, K, Many, Single, Specs, T
    from .models import NormalizedResponse


def _one_shot(kwargs: "dict[str, Any]") -> "tuple[FastRequests, dict[str, Any]]":
    """The client built from a module-level function's client arguments,
    and the arguments of its call."""
    client_kw, call_kw = split_one_shot(kwargs)
    return FastRequests(**client_kw), call_kw


def _owned_completions(cls: "type[C]", urls: Any, kwargs: "dict[str, Any]") -> C:
    """An as-completed iterator that closes its own client at its end."""
    client, call_kw = _one_shot(kwargs)
    try:
        return client._completions(cls, urls, RequestSettings(**call_kw), client.close_sync)
    except BaseException:
        client.close_sync()
        raise


# What a call returns (see fastreq._params): one result for one URL, a list
# for a list or a tuple of them, a dict with keys; None for a failure (with
# return_none_on_failure); Any where a per-request spec or save_to decides.
@overload
def fastreq(urls: str, *, return_type: AsText, **kwargs: Unpack[OneShotTyped]) -> Optional[str]: ...
@overload
def fastreq(urls: Many, *, return_type: AsText, **kwargs: Unpack[OneShotTyped]) -> List[Optional[str]]: ...
@overload
def fastreq(urls: str, *, return_type: AsContent, **kwargs: Unpack[OneShotTyped]) -> Optional[bytes]: ...
@overload
def fastreq(urls: Many, *, return_type: AsContent, **kwargs: Unpack[OneShotTyped]) -> List[Optional[bytes]]: ...
@overload
def fastreq(urls: str, *, return_type: AsResponse, **kwargs: Unpack[OneShotTyped]) -> Optional[NormalizedResponse]: ...
@overload
def fastreq(urls: Many, *, return_type: AsResponse,
            **kwargs: Unpack[OneShotTyped]) -> List[Optional[NormalizedResponse]]: ...
@overload
def fastreq(urls: str, *, return_type: AsStream, **kwargs: Unpack[OneShotTyped]) -> None: ...
@overload
def fastreq(urls: Many, *, return_type: AsStream, **kwargs: Unpack[OneShotTyped]) -> List[None]: ...
@overload
def fastreq(urls: str, *, return_type: AsBuffer,
            **kwargs: Unpack[OneShotTyped]) -> Optional[memoryview]: ...
@overload
def fastreq(urls: Many, *, return_type: AsBuffer,
            **kwargs: Unpack[OneShotTyped]) -> List[Optional[memoryview]]: ...
@overload
def fastreq(urls: Single, *, parse_func: Callable[[Any], T], **kwargs: Unpack[OneShotParsed]) -> Optional[T]: ...
@overload
def fastreq(urls: Specs, *, parse_func: Callable[[Any], T], **kwargs: Unpack[OneShotParsed]) -> List[Optional[T]]: ...
@overload
def fastreq(urls: Specs, *, keys: None = None, **kwargs: Unpack[OneShotKeyed]) -> List[Any]: ...
@overload
def fastreq(urls: Specs, *, keys: List[K], **kwargs: Unpack[OneShotKeyed]) -> Dict[K, Any]: ...
@overload
def fastreq(urls: URLs, **kwargs: Unpack[OneShotKwargs]) -> Any: ...


@signature_of(OneShotParams)
def fastreq(urls: Any, **kwargs: Any) -> Any:
    """Run requests synchronously and return their results.

    Builds a :class:`FastRequests` from the client parameters, runs one
    request call with the request parameters and closes the client. It uses
    no event loop: it waits with the GIL released in 100 ms slices, so
    Ctrl-C raises KeyboardInterrupt promptly (cancelling the requests), and
    it works inside a running event loop (Jupyter).

    See :class:`FastRequests` for the client parameters and
    :meth:`FastRequests.request` for the request parameters.
    """
    client, call_kw = _one_shot(kwargs)
    try:
        return client.request_sync(urls, **call_kw)
    finally:
        client.close_sync()


@overload
async def fastreq_async(urls: str, *, return_type: AsText, **kwargs: Unpack[OneShotTyped]) -> Optional[str]: ...
@overload
async def fastreq_async(urls: Many, *, return_type: AsText, **kwargs: Unpack[OneShotTyped]) -> List[Optional[str]]: ...
@overload
async def fastreq_async(urls: str, *, return_type: AsContent, **kwargs: Unpack[OneShotTyped]) -> Optional[bytes]: ...
@overload
async def fastreq_async(urls: Many, *, return_type: AsContent,
                        **kwargs: Unpack[OneShotTyped]) -> List[Optional[bytes]]: ...
@overload
async def fastreq_async(urls: str, *, return_type: AsResponse,
                        **kwargs: Unpack[OneShotTyped]) -> Optional[NormalizedResponse]: ...
@overload
async def fastreq_async(urls: Many, *, return_type: AsResponse,
                        **kwargs: Unpack[OneShotTyped]) -> List[Optional[NormalizedResponse]]: ...
@overload
async def fastreq_async(urls: str, *, return_type: AsStream, **kwargs: Unpack[OneShotTyped]) -> None: ...
@overload
async def fastreq_async(urls: Many, *, return_type: AsStream, **kwargs: Unpack[OneShotTyped]) -> List[None]: ...
@overload
async def fastreq_async(urls: str, *, return_type: AsBuffer,
                        **kwargs: Unpack[OneShotTyped]) -> Optional[memoryview]: ...
@overload
async def fastreq_async(urls: Many, *, return_type: AsBuffer,
                        **kwargs: Unpack[OneShotTyped]) -> List[Optional[memoryview]]: ...
@overload
async def fastreq_async(urls: Single, *, parse_func: Callable[[Any], T],
                        **kwargs: Unpack[OneShotParsed]) -> Optional[T]: ...
@overload
async def fastreq_async(urls: Specs, *, parse_func: Callable[[Any], T],
                        **kwargs: Unpack[OneShotParsed]) -> List[Optional[T]]: ...
@overload
async def fastreq_async(urls: Specs, *, keys: None = None, **kwargs: Unpack[OneShotKeyed]) -> List[Any]: ...
@overload
async def fastreq_async(urls: Specs, *, keys: List[K], **kwargs: Unpack[OneShotKeyed]) -> Dict[K, Any]: ...
@overload
async def fastreq_async(urls: URLs, **kwargs: Unpack[OneShotKwargs]) -> Any: ...


@signature_of(OneShotParams)
async def fastreq_async(urls: Any, **kwargs: Any) -> Any:
    """The coroutine twin of :func:`fastreq`. It never blocks the event
    loop and uses no thread per request: the batch's readiness descriptor
    is watched with ``loop.add_reader``. Cancelling the awaiting task
    cancels the requests in the engine."""
    client, call_kw = _one_shot(kwargs)
    try:
        return await client.request(urls, **call_kw)
    finally:
        client.close_sync()


@signature_of(OneShotParams)
def fastreq_as_completed(urls: Any, **kwargs: Any) -> SyncCompletions:
    """(fastreq addition) Like :func:`fastreq` (same keyword arguments) but
    returns an iterator of :class:`Completion` in completion order. The
    client it creates is closed when the iterator is exhausted or closed::

        with fastreq_as_completed(urls, concurrency=100) as it:
            for done in it:
                print(done.index, done.result, done.error)
    """
    return _owned_completions(SyncCompletions, urls, kwargs)


@signature_of(OneShotParams)
def fastreq_as_completed_async(urls: Any, **kwargs: Any) -> AsyncCompletions:
    """(fastreq addition) Like :func:`fastreq_async` (same keyword
    arguments) but returns an async iterator of :class:`Completion` in
    completion order; the client it creates is closed at the end::

        async for done in fastreq_as_completed_async(urls):
            ...
    """
    return _owned_completions(AsyncCompletions, urls, kwargs)
