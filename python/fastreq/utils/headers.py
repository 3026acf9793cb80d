"""fastreq 3.x's header manager: User-Agent rotation for headers you build
yourself.

A client rotates User-Agents in the engine (``random_user_agent=True``,
the USER_AGENTS environment variable); :class:`HeaderManager` is the
standalone object of 3.x, in plain Python.
"""

from __future__ import annotations

import os
import random
from typing import ClassVar, Dict, Iterable, List, Optional

from .._params import comma_list

__all__ = ["HeaderManager"]


class HeaderManager:
    """Headers with a rotating User-Agent.

    The User-Agent of :meth:`get_headers` is, in order: the custom one
    (``custom_user_agent`` or :meth:`set_custom_user_agent`), else a random
    one of ``user_agents``, of the USER_AGENTS environment variable
    (comma-separated), of the lines at the USER_AGENTS_URL environment
    variable (fetched with fastreq when the manager is made; a failed fetch
    is ignored) or of :attr:`DEFAULT_USER_AGENTS`. With
    ``random_user_agent=False`` no User-Agent is added.

    Example::

        manager = HeaderManager(user_agents=["Custom UA 1", "Custom UA 2"])
        manager.get_headers({"Authorization": "Bearer token"})
        # {"user-agent": "Custom UA 2", "Authorization": "Bearer token"}
    """

    #: fastreq 3.x's built-in User-Agents.
    DEFAULT_USER_AGENTS: ClassVar[List[str]] = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.2 Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/119.0.0.0 Safari/537.36 Edg/119.0.0.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.2 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.2 Mobile/15E148 Safari/604.1",
    ]

    def __init__(self, random_user_agent: bool = True, user_agents: Optional[List[str]] = None,
                 custom_user_agent: Optional[str] = None) -> None:
        self._enabled = random_user_agent
        self._custom_ua = custom_user_agent
        self._agents = self._load_user_agents(user_agents)

    def _load_user_agents(self, provided: Optional[Iterable[str]]) -> List[str]:
        if provided:
            return list(provided)
        env_agents = comma_list(os.environ.get("USER_AGENTS"))
        if env_agents:
            return env_agents
        remote = os.environ.get("USER_AGENTS_URL", "")
        if remote:
            try:
                agents = _fetch_agents(remote)
            except ValueError:
                agents = []
            if agents:
                return agents
        return self.DEFAULT_USER_AGENTS.copy()

    def get_headers(self, custom_headers: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        """A new dict: the User-Agent (as "user-agent"), then custom_headers
        (which win, a "user-agent" among them included)."""
        headers: Dict[str, str] = {}
        if self._enabled:
            headers["user-agent"] = self._custom_ua or random.choice(self._agents)
        if custom_headers:
            headers.update(custom_headers)
        return headers

    def set_custom_user_agent(self, user_agent: str) -> None:
        """Use this User-Agent from now on (ends the rotation)."""
        self._custom_ua = user_agent

    def get_user_agents(self) -> List[str]:
        """A copy of the User-Agents rotated."""
        return self._agents.copy()

    def update_agents_from_remote(self, url: str) -> None:
        """Rotate the lines of the text at url (fetched with fastreq,
        blank lines skipped); a text with no line keeps the list.

        Raises:
            ValueError: The fetch failed or the status was 400 or more.
        """
        agents = _fetch_agents(url)
        if agents:
            self._agents = agents


def _fetch_agents(url: str) -> List[str]:
    """The non-blank lines of the text at url, or ValueError."""
    from ..api import fastreq
    from ..exceptions import FastRequestsError, redact_url

    try:
        r = fastreq(url, return_type="response", timeout=10.0, max_retries=0, random_user_agent=False,
                    verbose=False)
    except FastRequestsError as e:
        raise ValueError(f"Failed to update user agents: {e}") from e
    if r is None or r.status_code >= 400:
        raise ValueError(f"Failed to update user agents: {redact_url(url)} answered {r.status_code if r else None}")
    return [line.strip() for line in r.text.splitlines() if line.strip()]
