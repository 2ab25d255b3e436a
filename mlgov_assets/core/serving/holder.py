"""The models the service scores with, swapped without a restart.

A request reads :attr:`ModelHolder.champion` once and scores every row with that object, so a
response never mixes versions. A poller looks at the champion alias (and the shadow challenger,
chosen as batch scoring chooses it: ``monitoring.scoring.latest_challenger``) every
``poll_seconds``; a new champion version is loaded and verified off the request path (the sha256 manifest,
through ``Registry.load_governed``) and only then replaces the reference in one assignment. A
version that fails verification is never served: the old champion stays (and ``/ready`` says what
happened), or with none loaded the service is not ready. The shadow is only chosen here: its
version goes to ``on_shadow`` (the shadow process loads it, verified, in its own process).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlgov_assets.core.models.registry import Registry


@dataclass(frozen=True)
class Loaded:
    """A verified model and the version it is."""

    version: int
    model: Any


@dataclass(frozen=True)
class HolderState:
    """What ``/ready`` reports: the models loaded and, when something is wrong, why."""

    champion: int | None
    shadow: int | None
    problem: str | None
    swaps: int


class ModelHolder:
    """The champion (and shadow) references, and the poller that moves them."""

    def __init__(
        self,
        registry: Registry,
        *,
        shadow: bool = True,
        on_swap: Callable[[int | None, int], None] | None = None,
        on_shadow: Callable[[int | None], None] | None = None,
    ):
        self.registry = registry
        self.want_shadow = shadow
        self.champion: Loaded | None = None
        self.shadow: int | None = None  # the shadow's version (scored by the shadow process)
        self._on_shadow = on_shadow
        self.problem: str | None = None
        self.swaps = 0
        self._on_swap = on_swap
        self._refused: dict[int, str] = {}  # versions that failed verification: not retried every poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._poll_lock = threading.Lock()

    def state(self) -> HolderState:
        champ, shadow = self.champion, self.shadow
        return HolderState(
            champion=None if champ is None else champ.version,
            shadow=shadow,
            problem=self.problem,
            swaps=self.swaps,
        )

    def _load(self, version: int) -> Loaded:
        from mlgov_assets.core.monitoring.scoring import load_verified

        return Loaded(version=version, model=load_verified(self.registry, version))

    def poll(self) -> None:
        """One look at the registry: load and swap in a moved champion or shadow. Never raises."""
        with self._poll_lock:
            try:
                self._poll_champion()
                if self.want_shadow:
                    self._poll_shadow()
            except Exception as exc:  # the registry unreachable: keep serving what is loaded
                self.problem = f"registry poll failed: {type(exc).__name__}: {exc}"[:500]

    def _poll_champion(self) -> None:
        from mlgov_assets.core.integrity import IntegrityError

        wanted = self.registry.champion_version()
        current = self.champion
        if wanted is None:
            self.problem = None if current is not None else "no champion: train one (`mlgov train`) before serving"
            return
        if current is not None and current.version == wanted:
            self.problem = None
            return
        if wanted in self._refused:
            self.problem = self._refused[wanted]
            return
        try:
            loaded = self._load(wanted)
        except IntegrityError as exc:
            why = f"champion v{wanted} refused: its artifacts failed verification: {exc}"[:1000]
            self._refused[wanted] = why
            self.problem = why if current is None else f"{why} (still serving v{current.version})"
            return
        self.champion = loaded  # the swap: one reference, read once per request
        self.swaps += current is not None
        self.problem = None
        if self._on_swap is not None:
            self._on_swap(None if current is None else current.version, wanted)

    def _poll_shadow(self) -> None:
        from mlgov_assets.core.monitoring.scoring import latest_challenger

        champ = self.champion
        wanted = latest_challenger(self.registry, None if champ is None else champ.version)
        if wanted != self.shadow:
            self.set_shadow(wanted)

    def set_shadow(self, version: int | None) -> None:
        """The shadow to score with from now on (the poller's choice; tests may force one)."""
        self.shadow = version
        if self._on_shadow is not None:
            self._on_shadow(version)

    def start(self, every: float) -> None:
        """Poll now, then every ``every`` seconds on a daemon thread."""
        self.poll()

        def loop() -> None:
            while not self._stop.wait(every):
                self.poll()

        self._thread = threading.Thread(target=loop, name="mlgov-serve-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
