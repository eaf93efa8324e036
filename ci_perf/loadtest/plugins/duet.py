"""Duet mode, inside Locust: every simulated user has a twin that runs the same code against the base.

The runner adds this file to ``-f`` when ``comparison.baseline_target`` is set and passes the base URL
(``protocol.PluginSettings.baseline_target``). At ``init`` every User class (``HttpUser`` or
``FastHttpUser``, the zero-code user included, or a pytest-style file's users) is patched so that
each user Locust starts brings a **twin**: another instance of the same class whose ``host`` is the
base URL and whose ``context()`` adds ``{ARM_KEY: "base"}`` (Locust's sessions merge
``user.context()`` into every request's context, so the collector, and anything else reading a
request's context, sees the arm). The twin runs the user's own code from ``__init__`` on:
``on_start`` (a login, the cookies and tokens its own deployment hands out), TaskSets,
``catch_response`` validation, ``rest()``, think time. Both arms are judged by the same code, so two
identical deployments show the same failures.

**The same draws.** A user and its twin draw from generators seeded alike: while duet is on, the
``random`` module's functions (Locust's task choice and ``between`` think times, the locustfile's
``random.choice``/``randint``…) draw from the running pair's own generator, seeded from the
process's (so a ``random.seed`` in the locustfile still fixes the run). A twin therefore picks the
same tasks, ids and think times as its user and sends the same requests, until the two deployments
answer differently and the code branches on it. Greenlets of neither (Locust's own, a user's own
``gevent.spawn``) draw from the process's generator as before.

**Lockstep.** A user and its twin meet before each request they send from their own greenlet (the
client's ``request``, wrapped on the instance; a pytest-style file's session fixture too) and before
each wait (``TaskSet.wait``, patched while duet is on): whichever gets there first waits for the
other. Their k-th requests therefore start together and both arms send as many, a slower
deployment does not get less load than the other (as two free-running closed loops would give
it), and when the run ends the two are at most one request apart in a pair's own sequence — which
the collector counts alike, in flight or done. Which of the two starts first is a coin flip (a
confirm re-run sets it for every pair, ``PluginSettings.duet_first``, alternating between re-runs); after
that the pair is symmetric, so the arms are exchangeable when the deployments are the same
(docs/STATISTICS.md, "Duet"). Requests from other greenlets (a task's own ``gevent.spawn``) do not
meet.

**Counting.** Twins live in a group of their own: Locust counts, ramps and stops only the users it
started, each of which starts and stops its twin (graceful or forced, as Locust asks). ``users: N``
means N users on *each* deployment, 2N on the load generator. A user's greenlet ends after its
twin's, so a graceful stop waits for both, up to ``--stop-timeout``.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any

import gevent
from gevent.event import Event
from gevent.pool import Group
from locust import events
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.exception import StopUser
from locust.user.task import LOCUST_STATE_STOPPING, LOCUST_STATE_WAITING, TaskSet
from locust.user.users import HttpUser, PytestUser, User

from ci_perf.loadtest.protocol import ARM_KEY, BASE, PluginSettings

_TWIN = "_ci_perf_twin"  # on a user: its twin
_PAIR = "_ci_perf_pair"  # on a user and its twin: their lockstep
_STOP_BY = "_ci_perf_stop_by"  # on a user asked to stop gracefully: when Locust stops waiting (monotonic)
_PATCHED = "_ci_perf_duet"  # on our replacement functions: patched once, also through a subclass

# users whose sessions take their base URL from self.host and merge self.context() into each request's
# context (a pytest-style file's users: its `session`/`fastsession` fixtures are built with user=self)
TWINNABLE = (HttpUser, FastHttpUser, PytestUser)

_twins = Group()  # Locust's runner never sees them: it counts users by its own group
_PROCESS_RANDOM: random.Random = random._inst  # noqa: SLF001 - what random.x() draws from
_streams: dict[Any, random.Random] = {}  # a pair's greenlets → their generators (seeded alike)


def _drawn_in_pair(name: str) -> Callable[..., Any]:
    def draw(*args: Any, **kwargs: Any) -> Any:
        return getattr(_streams.get(gevent.getcurrent(), _PROCESS_RANDOM), name)(*args, **kwargs)

    draw.__name__ = draw.__qualname__ = name
    draw.__doc__ = getattr(_PROCESS_RANDOM, name).__doc__
    return draw


def share_draws_within_pairs() -> None:
    """Make the ``random`` module's functions draw from the running pair's generator (once)."""
    for name in dir(random):
        if getattr(getattr(random, name), "__self__", None) is _PROCESS_RANDOM:
            setattr(random, name, _drawn_in_pair(name))


class Lockstep:
    """A user and its twin: each ``meet`` returns when the other has met too, or has ended."""

    __slots__ = ("ended", "first")

    def __init__(self) -> None:
        self.first: Event | None = None  # set when the one waiting may go on
        self.ended = False

    def meet(self) -> None:
        if self.ended:
            return
        if self.first is None:
            first = self.first = Event()
            first.wait()
        else:
            first, self.first = self.first, None
            first.set()

    def end(self) -> None:
        """One of the two ended: the other never waits again."""
        self.ended = True
        if self.first is not None:
            self.first.set()
            self.first = None


def make_twin(user: User, base_url: str) -> User:
    """Another user of the user's class, built by its own ``__init__``, aimed at ``base_url``."""
    cls = type(user)
    twin = cls.__new__(cls)
    twin.host = base_url  # HttpUser and FastHttpUser build their client from self.host in __init__
    cls.__init__(twin, user.environment)
    context = twin.context  # the class's own context(), if it has one

    def base_context() -> dict[str, Any]:
        return {**context(), ARM_KEY: BASE}

    twin.context = base_context  # type: ignore[method-assign] # the instance's arm, for every request it sends
    return twin


def _state(user: User) -> str | None:
    return user._state  # noqa: SLF001 - running, waiting or stopping: Locust keeps it private


def _spawn(user: User, group: Group, run: Callable[[User], None]) -> None:
    """What ``User.start`` does, with our function in the greenlet (its ``args[0]`` is the user)."""
    user._greenlet = group.spawn(run, user)  # noqa: SLF001 - the fields User.start sets
    user._group = group  # noqa: SLF001


def _run_twin(twin: User) -> None:
    try:
        twin.run()
    finally:
        getattr(twin, _PAIR).end()
        _streams.pop(gevent.getcurrent(), None)


def _run_pair(user: User) -> None:
    """The greenlet Locust holds for a user (``args[0]`` is the user, as Locust expects): the
    user runs here, and the greenlet ends after the twin's — at once if Locust killed the user
    after its stop timeout, since Locust would kill the twin then too."""
    twin: User = getattr(user, _TWIN)
    lockstep: Lockstep = getattr(user, _PAIR)
    try:
        user.run()
        lockstep.end()
        stop_by = getattr(user, _STOP_BY, None)
        twin.greenlet.join(timeout=None if stop_by is None else max(0.0, stop_by - time.monotonic()))
    finally:
        lockstep.end()
        _streams.pop(gevent.getcurrent(), None)
        twin.greenlet.kill(block=True)  # nothing if it ended


def _patch(user_class: type[User], base_url: str, rng: random.Random) -> None:
    if getattr(user_class.start, _PATCHED, False):  # a subclass of a patched class: already twinned
        return
    stop = user_class.stop

    def start(self: User, group: Group) -> Any:
        twin = make_twin(self, base_url)
        lockstep = Lockstep()
        setattr(self, _TWIN, twin)
        setattr(self, _PAIR, lockstep)
        setattr(twin, _PAIR, lockstep)
        for user in (self, twin):
            pair_requests(getattr(user, "client", None), user)
        twin_first = rng.random() < 0.5 if _FIRST is None else _FIRST == BASE
        if twin_first:
            _spawn(twin, _twins, _run_twin)
        _spawn(self, group, _run_pair)
        if not twin_first:
            _spawn(twin, _twins, _run_twin)
        seed = _PROCESS_RANDOM.getrandbits(64)
        _streams[self.greenlet] = random.Random(seed)  # noqa: S311 - load mix and think times
        _streams[twin.greenlet] = random.Random(seed)  # noqa: S311
        return self.greenlet

    def stop_pair(self: User, force: bool = False) -> bool:
        twin: User | None = getattr(self, _TWIN, None)
        if twin is not None:  # the twin first: a forced stop of the user waits until its greenlet ends
            if not force:
                setattr(self, _STOP_BY, time.monotonic() + float(self.environment.stop_timeout or 0))
            if not twin.greenlet.dead and (force or _state(twin) != LOCUST_STATE_STOPPING):
                stop(twin, force)
        return bool(stop(self, force))

    for replacement in (start, stop_pair):
        setattr(replacement, _PATCHED, True)
    user_class.start = start  # type: ignore[method-assign]
    user_class.stop = stop_pair  # type: ignore[method-assign]
    if issubclass(user_class, PytestUser):
        for function in user_class.functions:
            if not getattr(function.obj, _PATCHED, False):
                function.obj = _meeting_after(function.obj)


def pair_requests(session: Any, user: User) -> None:
    """Every request ``session`` sends from ``user``'s own greenlet first meets the twin's (once per session)."""
    request = getattr(session, "request", None)
    lockstep: Lockstep | None = getattr(user, _PAIR, None)
    if request is None or lockstep is None or getattr(request, _PATCHED, False):
        return

    def paired_request(*args: Any, **kwargs: Any) -> Any:
        if gevent.getcurrent() is user.greenlet:  # not a greenlet the task spawned: its partner is unknown
            lockstep.meet()
            if lockstep.ended and _state(user) == LOCUST_STATE_STOPPING:
                raise StopUser  # Locust stopped the other before this request: this one stops before it too
        return request(*args, **kwargs)

    setattr(paired_request, _PATCHED, True)
    session.request = paired_request


def _meeting_after(test: Callable[[Any], None]) -> Callable[[Any], None]:
    """A pytest-style test function: its session's requests meet, and the pair meets after each call
    (PytestUser never waits)."""

    def paired_test(fixture: Any) -> None:
        user = getattr(fixture, "user", None)  # session, fastsession: built with user=self
        lockstep: Lockstep | None = getattr(user, _PAIR, None)
        if user is None or lockstep is None:
            test(fixture)
            return
        pair_requests(fixture, user)
        try:
            test(fixture)
        except Exception:
            lockstep.meet()
            raise
        lockstep.meet()

    setattr(paired_test, _PATCHED, True)
    return paired_test


def _wait_in_lockstep(wait: Callable[[TaskSet], None]) -> Callable[[TaskSet], None]:
    def paired_wait(self: TaskSet) -> None:
        lockstep: Lockstep | None = getattr(self.user, _PAIR, None)
        if lockstep is not None and not lockstep.ended:
            if _state(self.user) == LOCUST_STATE_STOPPING:
                raise StopUser
            self.user._state = LOCUST_STATE_WAITING  # noqa: SLF001 - Locust may kill it here at once, as in its sleep
            lockstep.meet()
        wait(self)

    setattr(paired_wait, _PATCHED, True)
    return paired_wait


_BASE_URL = PluginSettings.from_env(os.environ).baseline_target
_FIRST = PluginSettings.from_env(os.environ).duet_first  # a confirm re-run's order; else a coin flip per pair
if _BASE_URL:  # at import, before Locust imports the locustfile: its `from random import choice` gets ours
    share_draws_within_pairs()


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    if not _BASE_URL:
        return
    rng = random.Random()  # noqa: S311 - which of a pair starts first, not cryptography
    for user_class in environment.user_classes:
        if not issubclass(user_class, TWINNABLE):
            raise TypeError(
                f"duet mode needs HttpUser, FastHttpUser or pytest-style users; {user_class.__name__} is none of them"
            )
        _patch(user_class, _BASE_URL, rng)
    if not getattr(TaskSet.wait, _PATCHED, False):
        TaskSet.wait = _wait_in_lockstep(TaskSet.wait)  # type: ignore[method-assign]
