"""Per edit: when it was committed in the source and when a Trino query first saw it in silver."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Edit:
    id: int
    movie_id: int
    what: str  # e.g. `title → "Heat (1995)"`
    committed_at: float  # wall clock, this process
    visible_after_s: float | None = None
    gave_up: bool = False

    def as_dict(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "movie_id": self.movie_id,
            "what": self.what,
            "committed_at": self.committed_at,
            "visible_after_s": self.visible_after_s,
            "waiting_s": None if self.visible_after_s is not None else round(now - self.committed_at, 1),
            "gave_up": self.gave_up,
        }


@dataclass
class Tracker:
    """Watches each edit on a thread: polls `visible()` until true (or `timeout_s`), one clock."""

    poll_s: float = 0.5
    timeout_s: float = 600.0
    edits: list[Edit] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def track(self, movie_id: int, what: str, committed_at: float, visible: Callable[[], bool]) -> Edit:
        edit = Edit(next(self._ids), movie_id, what, committed_at)
        with self._lock:
            self.edits.append(edit)
            del self.edits[:-200]  # keep the page's history bounded
        threading.Thread(target=self._watch, args=(edit, visible), daemon=True).start()
        return edit

    def _watch(self, edit: Edit, visible: Callable[[], bool]) -> None:
        while time.time() - edit.committed_at < self.timeout_s:
            try:
                if visible():
                    edit.visible_after_s = round(time.time() - edit.committed_at, 1)
                    return
            except Exception:  # Trino restarting or the table not registered yet: keep polling
                pass
            time.sleep(self.poll_s)
        edit.gave_up = True

    def for_movie(self, movie_id: int) -> list[dict[str, Any]]:
        now = time.time()
        with self._lock:
            return [e.as_dict(now) for e in reversed(self.edits) if e.movie_id == movie_id]
