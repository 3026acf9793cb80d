"""Optional progress bars (rich or tqdm), as in fastreq 3.

``progress=True`` tries rich, then tqdm; ``"rich"`` and ``"tqdm"`` need
that package and raise RuntimeError without it. The bar shows
"HTTP requests", a bar and completed/total, and is hidden when stderr is
not a terminal. ``progress_callback(completed, total)`` is separate and
is called after each request whatever ``progress`` says.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Optional

DESCRIPTION = "HTTP requests"


class _Reporter:
    def __init__(self, advance: Callable[[], Any], close: Callable[[], Any]) -> None:
        self.advance = advance
        self.close = close


def _rich(total: int, tty: bool) -> _Reporter:
    from rich.progress import (  # type: ignore[import-not-found, unused-ignore]
        BarColumn, Progress, TextColumn, TimeRemainingColumn)

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        "{task.completed}/{task.total}",
        TimeRemainingColumn(),
        disable=not tty,
    )
    progress.start()
    task_id = progress.add_task(DESCRIPTION, total=total)
    return _Reporter(lambda: progress.advance(task_id), progress.stop)


def _tqdm(total: int, tty: bool) -> _Reporter:
    from tqdm.auto import tqdm  # type: ignore[import-untyped, import-not-found, unused-ignore]

    bar = tqdm(total=total, desc=DESCRIPTION, unit="req", disable=not tty)
    return _Reporter(lambda: bar.update(1), bar.close)


def open_reporter(mode: Any, total: int) -> Optional[_Reporter]:
    """A started progress bar for mode (None/False: none)."""
    if not mode or total == 0:
        return None
    tty = sys.stderr.isatty()
    if mode is True:
        try:
            return _rich(total, tty)
        except ImportError:
            try:
                return _tqdm(total, tty)
            except ImportError:
                raise RuntimeError(
                    "progress=True requires either rich or tqdm; install one of them (pip install rich)"
                ) from None
    if mode == "rich":
        try:
            return _rich(total, tty)
        except ImportError as exc:
            raise RuntimeError("progress='rich' requires the optional dependency rich (pip install rich)") from exc
    if mode == "tqdm":
        try:
            return _tqdm(total, tty)
        except ImportError as exc:
            raise RuntimeError("progress='tqdm' requires the optional dependency tqdm (pip install tqdm)") from exc
    raise ValueError(f"unknown progress mode: {mode!r}; use True, 'rich' or 'tqdm'")


def make_notifier(
    reporter: Optional[_Reporter], callback: Optional[Callable[[int, int], Any]], total: int
) -> Optional[Callable[[int], None]]:
    """One function called with the completed count after each request."""
    if reporter is None and callback is None:
        return None
    if reporter is None:
        assert callback is not None

        def notify_callback(done: int) -> None:
            callback(done, total)

        return notify_callback
    advance = reporter.advance
    if callback is None:

        def notify_bar(done: int) -> None:
            advance()

        return notify_bar

    def notify_both(done: int) -> None:
        advance()
        callback(done, total)

    return notify_both


__all__ = ["open_reporter", "make_notifier"]
