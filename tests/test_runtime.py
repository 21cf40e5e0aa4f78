"""The runtime's shutdown helper: every actor is stopped, a batch at a time."""

from __future__ import annotations

from typing import Any

import pykka

from actors._runtime import STOP_BATCH, stop_actors


class _Idle(pykka.ThreadingActor):
    use_daemon_thread = True


def test_stop_actors_stops_every_actor_of_a_list_longer_than_a_batch() -> None:
    refs: list[pykka.ActorRef[Any]] = [_Idle.start() for _ in range(2 * STOP_BATCH + 3)]
    stop_actors(refs, timeout=10.0)
    assert not any(ref.is_alive() for ref in refs)


def test_stop_actors_accepts_actors_that_are_already_stopped() -> None:
    refs: list[pykka.ActorRef[Any]] = [_Idle.start() for _ in range(3)]
    refs[1].stop()
    stop_actors(refs, timeout=10.0)
    assert not any(ref.is_alive() for ref in refs)
