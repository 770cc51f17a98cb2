"""An upload encoding against a shared reference and the `rm` that removes the reference's
last other user, their store requests interleaved in the orders hypothesis picks, with one
request of either refused (a 500 with retries off). Whatever the order and the refusal,
nothing a delta needs is gone: every key left reads back, and an operation that reported
success did what it said (FORMAT "Deleting and references")."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from memory_store import MemoryStore
from test_engine import keys_of, per_version, shared_engine

from deltaglider.engine import Engine
from deltaglider.errors import StorageError
from deltaglider.metadata import DeltaMeta, is_removal_marker, user_marker_key

REQUESTS = ("head", "download", "put_file", "put_bytes", "copy_within", "delete", "iter_listing")


class Turns:
    """Lets the requests of named operations through one at a time, in `order` (a name's
    entries are dropped once it is done; past its end, `names` one after the other), and refuses the
    `refuse`-th request of `refused` (counting from 0)."""

    def __init__(
        self, order: list[str], refused: str | None, refuse: int, names: tuple[str, ...]
    ) -> None:
        self._order, self._names = list(order), names
        self._done: set[str] = set()
        self._counts: dict[str, int] = {}
        self._refused, self._refuse = refused, refuse
        self._turn = threading.Condition()
        self.refusals = 0

    def run(self, who: str, request: Callable[[], Any]) -> Any:
        with self._turn:
            while (turn := self._next()) != who:
                if turn in self._done:
                    self._order.pop(0)
                else:
                    self._turn.wait()
            try:
                number = self._counts.get(who, 0)
                self._counts[who] = number + 1
                if who == self._refused and number == self._refuse:
                    self.refusals += 1
                    raise StorageError("refused: 500 Internal Server Error")
                return request()
            finally:
                if self._order:
                    self._order.pop(0)
                self._turn.notify_all()

    def _next(self) -> str:
        """Whose request goes next: the order's, then each name's in turn until it is done."""
        if self._order:
            return self._order[0]
        return next((n for n in self._names if n not in self._done), "")

    def done(self, who: str) -> None:
        with self._turn:
            self._done.add(who)
            self._turn.notify_all()


class TurnStore:
    """One operation's view of the shared memory store: every request waits for its turn."""

    def __init__(self, memory: MemoryStore, turns: Turns, who: str) -> None:
        self._memory, self._turns, self._who = memory, turns, who
        self.client = None

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._memory, name)
        if name not in REQUESTS:
            return real

        def request(*args: Any, **kwargs: Any) -> Any:
            if name == "iter_listing":  # the pages are read within the turn
                return iter(self._turns.run(self._who, lambda: list(real(*args, **kwargs))))
            return self._turns.run(self._who, lambda: real(*args, **kwargs))

        return request


def _in_turn(turns: Turns, who: str, work: Callable[[], Any], outcome: dict[str, Any]) -> None:
    try:
        outcome[who] = work()
    except StorageError as error:
        outcome[who] = error
    finally:
        turns.done(who)


@settings(
    max_examples=int(os.environ.get("DG_RACE_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    order=st.lists(st.sampled_from(["up", "rm"]), max_size=40),
    refused=st.sampled_from([None, "up", "rm"]),
    refuse=st.integers(min_value=0, max_value=14),
)
def test_an_upload_racing_the_removal_of_its_reference_never_leaves_an_unreadable_delta(
    tmp_path_factory: Any, order: list[str], refused: str | None, refuse: int
) -> None:
    tmp_path = tmp_path_factory.mktemp("race")
    memory = MemoryStore(page_size=1000)
    (first, first_key), (second, second_key) = per_version(tmp_path, 2)
    setup = shared_engine(memory)
    setup.upload(first, "b", first_key)  # the reference, and the delta `rm` removes
    setup.close()
    turns = Turns(order, refused, refuse, ("up", "rm"))
    engines = {
        who: Engine(setup.settings, store=TurnStore(memory, turns, who)) for who in ("up", "rm")
    }  # type: ignore[arg-type]
    outcome: dict[str, Any] = {}
    work = {
        "up": lambda: engines["up"].upload(second, "b", second_key),
        "rm": lambda: engines["rm"].delete("b", first_key),
    }
    threads = [threading.Thread(target=_in_turn, args=(turns, w, work[w], outcome)) for w in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for engine in engines.values():
        engine.close()

    reader = shared_engine(memory)
    logical = [e.key for e in reader.listing("b", "rel/", recursive=True)]
    for key in logical:
        assert reader.verify("b", key).valid, (key, keys_of(memory))
    if not isinstance(outcome["up"], StorageError):
        assert second_key in logical
    if not isinstance(outcome["rm"], StorageError):
        assert first_key not in logical
    for key in keys_of(memory):
        head = memory.head("b", key)
        assert head is not None
        if key.endswith(".delta") and not key.startswith(".deltaglider/"):
            meta = DeltaMeta.from_dict(head.metadata, key)
            assert memory.head("b", meta.ref_key) is not None, (key, keys_of(memory))
            if meta.ref_key.startswith(".deltaglider/refs/"):
                assert memory.head("b", user_marker_key(meta.ref_key, key)) is not None
    if refused is None or not turns.refusals:
        assert not any(is_removal_marker(k) for k in keys_of(memory))
    reader.close()


def test_the_race_covers_both_operations(tmp_path: Path) -> None:
    """The interleaving test means something: alone, each operation makes several requests
    (so there are orders to interleave) and ends as it says."""
    memory = MemoryStore(page_size=1000)
    (first, first_key), (second, second_key) = per_version(tmp_path, 2)
    setup = shared_engine(memory)
    setup.upload(first, "b", first_key)
    setup.close()
    counts = {}
    for who, work in (("up", "upload"), ("rm", "delete")):
        turns = Turns([], None, 0, (who,))
        engine = Engine(setup.settings, store=TurnStore(memory, turns, who))  # type: ignore[arg-type]
        if work == "upload":
            engine.upload(second, "b", second_key)
        else:
            engine.delete("b", first_key)
        counts[who] = turns._counts[who]
        engine.close()
    assert counts["up"] >= 5 and counts["rm"] >= 5, counts
    assert [e.key for e in shared_engine(memory).listing("b", "rel/", recursive=True)] == [
        second_key
    ]
