"""Per edit: when it was committed in the source, when a Trino query first saw it in silver, and
its timeline through every hop (monitor/trace.py), found by the edit's own transaction."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lakehouse.apps.monitor.trace import Trace, describe


@dataclass
class Edit:
    id: int
    movie_id: int
    what: str  # e.g. `title → "Heat (1995)"`
    committed_at: float  # wall clock, this process
    visible_after_s: float | None = None
    gave_up: bool = False
    trace: Trace | None = None

    def as_dict(self, now: float) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "movie_id": self.movie_id,
            "what": self.what,
            "committed_at": self.committed_at,
            "visible_after_s": self.visible_after_s,
            "waiting_s": None if self.visible_after_s is not None else round(now - self.committed_at, 1),
            "gave_up": self.gave_up,
        }
        if self.trace is not None:
            t = self.trace
            out["timeline"] = [
                {"hop": h, "after_s": t.after_s(h), "where": describe(h, t.hops[h].detail)}
                for h in t.expected()
            ]
            out["slowest"] = t.slowest()
        return out


@dataclass
class Tracker:
    """Watches each edit on a thread: polls `visible()` until true (or `timeout_s`), one clock;
    with `follow` (Tracer.follow without its own Trino check), also fills in the edit's timeline,
    every `trace_s`, until every hop has it. A traced edit is asked of Trino only once silver has
    committed it: until then no query could see it, and each query shares the cores silver needs."""

    poll_s: float = 0.5
    timeout_s: float = 600.0
    follow: Callable[[Trace], object] | None = None
    trace_s: float = 1.0
    #: how often a traced edit is asked of Trino before its silver commit is found (a trace that
    #: cannot find it still ends)
    blind_s: float = 10.0
    edits: list[Edit] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def track(
        self,
        movie_id: int,
        what: str,
        committed_at: float,
        visible: Callable[[], bool],
        trace: Trace | None = None,
    ) -> Edit:
        edit = Edit(next(self._ids), movie_id, what, committed_at, trace=trace)
        with self._lock:
            self.edits.append(edit)
            del self.edits[:-200]  # keep the page's history bounded
        threading.Thread(target=self._watch, args=(edit, visible), daemon=True).start()
        return edit

    def _watch(self, edit: Edit, visible: Callable[[], bool]) -> None:
        traced = edit.trace if self.follow is not None else None
        next_follow = next_blind = 0.0
        while time.time() - edit.committed_at < self.timeout_s:
            try:
                ask = traced is None or traced.hops["silver"].at is not None
                if not ask and time.monotonic() >= next_blind:  # the trace may be stuck: ask anyway
                    ask, next_blind = True, time.monotonic() + self.blind_s
                if edit.visible_after_s is None and ask and visible():
                    seen = time.time()
                    edit.visible_after_s = round(seen - edit.committed_at, 1)
                    if traced is not None:  # the timeline's last hop is this very query
                        traced.hops["trino"].at = seen
                        traced.hops["trino"].detail = {"query": f"silver.{traced.table.partition('.')[2]}"}
                if traced is not None and self.follow is not None and time.monotonic() >= next_follow:
                    next_follow = time.monotonic() + self.trace_s
                    self.follow(traced)
            except Exception:  # Trino restarting or the table not registered yet: keep polling
                pass
            if edit.visible_after_s is not None and (traced is None or traced.complete()):
                return
            time.sleep(self.poll_s)
        if edit.visible_after_s is None:
            edit.gave_up = True

    def for_movie(self, movie_id: int) -> list[dict[str, Any]]:
        now = time.time()
        with self._lock:
            return [e.as_dict(now) for e in reversed(self.edits) if e.movie_id == movie_id]
