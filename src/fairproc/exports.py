"""Where a data-subject request's exports are written: one file name per subject and right,
always inside the folder asked for.

A subject id is whatever the host uses (an email address, ``ada.smith``, an id with ``/`` or
``..`` in it), so it is never used as a path. :func:`export_stem` encodes it: lowercase ASCII
letters, digits, ``_`` and ``-`` are kept, every other character is written as ``%XX``, one
escape per UTF-8 byte (``%`` itself included). The encoding is injective, so no two subjects
share a file, and stays injective when a file system ignores case (escapes use uppercase hex,
kept characters are lowercase): ``Ada`` and ``ada`` get different files on macOS and Windows
too. No name has a ``/``, ``\\``, NUL, dot or space, so none leaves the folder or is a name
Windows reserves. An encoding longer than :data:`MAX_STEM` keeps its first part and ends with
``~`` and a SHA-256 of the whole id (``~`` never appears in an encoding, so a shortened name
never equals a whole one).

Files are written atomically: to a private temporary file in the folder, then renamed over the
name, so a link planted at that name is replaced, never followed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

MAX_STEM = 160
"""The longest encoded subject kept whole: with ``-portability.json`` after it, a file name
stays well under the 255 bytes file systems allow."""
_KEPT = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")


def export_stem(subject: str) -> str:
    """The part of an export's file name that names the subject (see the module)."""
    encoded = "".join(
        ch if ch in _KEPT else "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
        for ch in subject
    )
    if len(encoded) <= MAX_STEM:
        return encoded
    digest = hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{encoded[: MAX_STEM - 65]}~{digest}"


def export_name(subject: str, right: str, suffix: str) -> str:
    """The file name of ``subject``'s export for ``right``: ``<stem>-<right><suffix>``."""
    return f"{export_stem(subject)}-{export_stem(right)}{suffix}"


def write_exports(out: Path, subject: str, right: str, texts: Mapping[str, str]) -> list[Path]:
    """Write each text of ``texts`` (suffix -> text) as ``subject``'s export into ``out``
    (created if missing); the paths written, in order."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for suffix, text in texts.items():
        path = out / export_name(subject, right, suffix)
        # A name with no separator, dot or NUL cannot leave the folder; checked all the same,
        # as writing outside it would be the one unrecoverable mistake here.
        assert path.parent == out and path.name == export_name(subject, right, suffix), path
        fd, temp = tempfile.mkstemp(prefix=".fairproc-export-", dir=out)  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        written.append(path)
    return written
