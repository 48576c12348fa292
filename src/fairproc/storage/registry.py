"""Opening a store by URL: :func:`open_store` finds the adapter for a URL's scheme through the
``fairproc.stores`` entry-point group, so a package of a third party adds a scheme without
touching fairproc; the shipped adapters register the same way (``pyproject.toml``).

An entry point named after a scheme (``sqlite``, ``postgresql``, ``csv``, ...) points at a
function ``open_url(url, *, create=True)`` returning a :class:`~fairproc.storage.Store`. The
adapter's module is imported only when its scheme is asked for.

Imports only the interface and the values; never an adapter directly.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from fairproc.errors import did_you_mean
from fairproc.storage.interface import Store
from fairproc.storage.values import StoreError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

ENTRY_POINTS = "fairproc.stores"
"""The entry-point group a store adapter registers its URL schemes in."""


@cache
def _adapters() -> dict[str, EntryPoint]:
    """Every registered scheme and its entry point (read once: installed packages do not
    change under a running process)."""
    from importlib.metadata import entry_points  # slow to import: only when a URL is opened

    return {ep.name.lower(): ep for ep in entry_points(group=ENTRY_POINTS)}


def schemes() -> list[str]:
    """The URL schemes some installed adapter opens, sorted."""
    return sorted(_adapters())


_EXAMPLES = "memory://, sqlite:///path, postgresql://..., mysql+pymysql://..., csv:///folder"


def hide_password(url: str) -> str:
    """``url`` with the password (if any) replaced by ``***``, for error messages."""
    head, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    return f"{head}{sep}{netloc}{slash}{tail}"


def open_store(url: str = "memory://", *, create: bool = True) -> Store:
    """The store a URL names: ``memory://`` (the default), ``sqlite:///path`` (relative) or
    ``sqlite:////abs/path``, ``postgresql://user@host/db``, ``mysql+pymysql://user@host/db``
    (MariaDB too), ``csv:///folder``, or a scheme another installed package registers
    (:data:`ENTRY_POINTS`). SQL URLs take ``?prefix=`` for the table-name prefix
    (default ``fairproc_``). Errors say what is wrong and where, never a driver traceback.

    ``create=False`` opens only a store that exists already (a SQLite file, a CSV folder, the
    fairproc tables of a SQL database) and otherwise raises :class:`StoreError` saying so, so
    that a command reading a mistyped path does not leave an empty store behind."""
    if not isinstance(url, str) or ("://" not in url and not url.startswith("csv:")):
        raise StoreError(f"not a store URL: {url!r}; expected one of {_EXAMPLES}")
    scheme = url.split(":", 1)[0].lower()
    base = scheme.split("+", 1)[0]
    adapters = _adapters()
    entry = adapters.get(base)
    if entry is None:
        raise StoreError(
            f"unknown store URL scheme {scheme!r}{did_you_mean(base, adapters)} in "
            f"{hide_password(url)!r}; "
            f"expected one of {_EXAMPLES}"
            + ("" if adapters else " (no adapter is registered: is fairproc installed?)")
        )
    try:
        open_url = entry.load()
    except (ImportError, AttributeError) as error:
        # A registered adapter whose package is broken or half installed: say which, not how.
        raise StoreError(
            f"the adapter registered for {base!r} ({entry.value}) cannot be loaded: {error}"
        ) from None
    opened = open_url(url, create=create)
    if not isinstance(opened, Store):
        raise StoreError(
            f"the adapter registered for {base!r} ({entry.value}) gave a "
            f"{type(opened).__name__}, which is not a fairproc store"
        )
    return opened
