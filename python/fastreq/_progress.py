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


def make_notifier(
    reporter: Optional[_Reporter], callback: Optional[Callable[[int, int], Any]], total: int
) -> Optional[Callable[[int], None]]:
    """One function called with the completed count after each request."""
    if reporter is None and callback is None:
        return None

    def notify(done: int) -> None:
        if reporter is not None:
            reporter.advance()
        if callback is not None:
            callback(done, total)

    return notify


__all__ = ["open_reporter", "make_notifier"]
