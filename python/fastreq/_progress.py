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


class Reporter:
    """A call's progress: ``advance(completed)`` after each request,
    ``close()`` at the end."""

    def __init__(self, advance: Callable[[int], Any], close: Callable[[], Any]) -> None:
        self.advance = advance
        self.close = close


def _rich(total: int, tty: bool) -> Reporter:
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
    return Reporter(lambda done: progress.advance(task_id), progress.stop)


def _tqdm(total: int, tty: bool) -> Reporter:
    from tqdm.auto import tqdm  # type: ignore[import-untyped, import-not-found, unused-ignore]

    bar = tqdm(total=total, desc=DESCRIPTION, unit="req", disable=not tty)
    return Reporter(lambda done: bar.update(1), bar.close)


def open_reporter(mode: Any, callback: Optional[Callable[[int, int], Any]], total: int) -> Optional[Reporter]:
    """The progress of a call of total requests (None when it shows none):
    the bar of mode (None/False: none), started, and callback(completed,
    total)."""
    bar = _open_bar(mode, total)
    if callback is None:
        return bar

    def advance(done: int) -> None:
        if bar is not None:
            bar.advance(done)
        callback(done, total)

    return Reporter(advance, bar.close if bar is not None else lambda: None)


def _open_bar(mode: Any, total: int) -> Optional[Reporter]:
    if not mode or total == 0:
        return None
    if mode is True:
        makers = [_rich, _tqdm]
        missing = "progress=True requires either rich or tqdm; install one of them (pip install rich)"
    elif mode in ("rich", "tqdm"):
        makers = [_rich if mode == "rich" else _tqdm]
        missing = f"progress={mode!r} requires the optional dependency {mode} (pip install {mode})"
    else:
        raise ValueError(f"unknown progress mode: {mode!r}; use True, 'rich' or 'tqdm'")
    for make in makers:
        try:
            return make(total, sys.stderr.isatty())
        except ImportError:
            pass
    raise RuntimeError(missing)


__all__ = ["Reporter", "open_reporter"]
