"""Where a scenario's world is put before its expectations run: in memory (the default), or a
fresh store of its own on the storage a URL names (:class:`UrlStores`), removed after it.

Imports the storage interface and registry only when a URL is given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from fairproc.scenarios.reading import Scenario
from fairproc.world import HistorySource

StoreFactory = Callable[[Scenario], HistorySource]


@runtime_checkable
class ReleasingFactory(Protocol):
    """A store factory that wants each store it made back when its scenario has run (to drop
    its tables, remove its folder)."""

    def __call__(self, scenario: Scenario) -> HistorySource: ...

    def release(self, store: HistorySource) -> None: ...


def memory_store(scenario: Scenario) -> HistorySource:
    return scenario.world()


class UrlStores:
    """A fresh store per scenario on the storage a URL names, loaded with the scenario's world
    and removed after it: a table prefix of its own on SQL, a subfolder of its own for CSV."""

    def __init__(self, url: str):

        self.url = url
        self.scheme = url.split(":", 1)[0].lower()
        self._cleanup: dict[int, Callable[[], None]] = {}
        # A bad URL or an unreachable server fails here, once, before any scenario runs.
        self.release(self._open(self._url_for("check")))

    def _url_for(self, token: str) -> str:
        if self.scheme == "memory":
            return self.url
        if self.scheme == "csv":
            folder = self.url[len("csv://") :]
            return f"csv://{folder.rstrip('/')}/scenario-{token}"
        base, _, query = self.url.partition("?")
        params = [p for p in query.split("&") if p and not p.startswith("prefix=")]
        params.append(f"prefix=fpscn_{token}_")
        return base + "?" + "&".join(params)

    def _open(self, url: str) -> Any:
        import shutil

        from fairproc.storage import OwnTables, open_store

        store = open_store(url)

        def cleanup() -> None:
            if isinstance(store, OwnTables):
                store.drop_tables()
            store.close()
            if self.scheme == "csv":
                shutil.rmtree(url[len("csv://") :], ignore_errors=True)

        self._cleanup[id(store)] = cleanup
        return store

    def __call__(self, scenario: Scenario) -> HistorySource:
        import secrets

        from fairproc.storage import ChangeSet

        store = self._open(self._url_for(secrets.token_hex(4)))
        try:
            store.apply(
                ChangeSet(
                    put_records=scenario.records,
                    add_events=scenario.events,
                    add_suppression=scenario.suppression,
                )
            )
        except BaseException:
            self.release(store)
            raise
        return store  # type: ignore[no-any-return]

    def release(self, store: HistorySource) -> None:
        cleanup = self._cleanup.pop(id(store), None)
        if cleanup is not None:
            cleanup()
