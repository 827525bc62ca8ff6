"""The anchors a performance can switch between: the shipped ones, folders named one by one
(``--anchor PATH``) and every anchor folder inside some directories (``--anchors DIR``).

Order (what ``/vis2mus/anchor i`` indexes): the shipped anchors, then the named folders in the
order given, then each directory's anchor folders sorted by name; folders that appear later are
added at the end, so loaded anchors keep their indices. A folder without an accompaniment (a
melody and chords) is a content piece and joins the content pieces (style mode) instead.

:meth:`Library.scan` re-reads only what changed, found from the modification times and sizes of
the files under each folder (cheap enough to call at every bar, off the send thread), once they
look the same at two scans in a row (not half-way through a copy or a save). A folder
that cannot be loaded is one log line and is skipped; one that breaks after it loaded keeps
playing its last good version; one that disappears drops out. Names are unique: a second folder
with a name already loaded is one line and skipped.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

from live.children import Worker
from live.texture.anchors import Anchor, AnchorError, content_pieces, default_anchors, load_anchor

logger = logging.getLogger(__name__)
MAX_FILES = 256  # files looked at per folder when checking for changes


def is_path(value: str, names: Iterable[str] = ()) -> bool:
    """Whether an ``--anchor`` value names a folder rather than an anchor: it has a path separator
    or starts with ``~`` or ``.``, or it is an existing folder and not one of ``names``."""
    if os.sep in value or "/" in value or value.startswith(("~", ".")):
        return True
    return value not in names and os.path.isdir(value)


def signature(folder: Path) -> tuple:
    """What a change to ``folder`` changes: ``(relative path, mtime_ns, size)`` of its files
    (links not followed, at most ``MAX_FILES``), or ``()`` when it is not a folder."""
    entries = []
    if not folder.is_dir():
        return ()
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(root, name)
            try:
                info = path.lstat()
            except OSError:
                continue
            entries.append((str(path.relative_to(folder)), info.st_mtime_ns, info.st_size))
            if len(entries) >= MAX_FILES:
                return tuple(entries)
    return tuple(entries)


def anchor_folders(directory: Path) -> list[Path]:
    """The subfolders of ``directory`` that hold an ``anchor.toml``, sorted by name; a subfolder
    that is a link is left out (nothing from outside the directory)."""
    try:
        children = sorted(directory.iterdir())
    except OSError:
        return []
    return [p for p in children if not p.is_symlink() and p.is_dir() and (p / "anchor.toml").is_file()]


@dataclass
class _Entry:
    folder: Path
    signature: tuple
    anchor: Anchor | None


class Library:
    """Shipped anchors plus user folders (``folders``) and directories of folders (``dirs``).

    ``anchors`` and ``contents`` map names to :class:`Anchor` in index order (a new dict after
    every change, so a reader never sees one half-updated); ``reloaded`` names those the last
    change replaced under the same name. ``log`` gets one line per problem.
    """

    def __init__(self, folders: Iterable[str | os.PathLike] = (), dirs: Iterable[str | os.PathLike] = (),
                 shipped: Mapping[str, Anchor] | None = None, shipped_contents: Mapping[str, Anchor] | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self._log = log if log is not None else logger.warning
        self._shipped = dict(default_anchors() if shipped is None else shipped)
        self._shipped_contents = dict(content_pieces() if shipped_contents is None else shipped_contents)
        self.folders = [Path(f).expanduser().resolve() for f in folders]
        self.dirs = [Path(d).expanduser().resolve() for d in dirs]
        self._entries: dict[Path, _Entry] = {}
        self._dir_seen: dict[Path, bool] = {}
        self._announced: dict[Path, Anchor | None] = {}
        self._pending: dict[Path, tuple] = {}
        self._lock = threading.Lock()
        self.anchors: dict[str, Anchor] = {}
        self.contents: dict[str, Anchor] = {}
        self.names: dict[Path, str] = {}
        self.reloaded: frozenset[str] = frozenset()
        for directory in self.dirs:
            if not directory.is_dir():
                self._log(f"anchors directory {directory} does not exist; watching for it")
        self.scan(settle=False)

    @classmethod
    def from_values(cls, values: Iterable[str], dirs: Iterable[str | os.PathLike] = (),
                    log: Callable[[str], None] | None = None) -> "Library":
        """A library from ``--anchor`` values (names of shipped anchors or folders) and
        ``--anchors`` directories."""
        shipped = default_anchors()
        return cls([v for v in values if is_path(v, shipped)], dirs, shipped=shipped, log=log)

    @property
    def watched(self) -> bool:
        """Whether there are user folders or directories to re-scan."""
        return bool(self.folders or self.dirs)

    @property
    def failed(self) -> frozenset[str]:
        """Names of the user folders that are not loaded (broken, or a name already taken)."""
        loaded = set(self.names)
        return frozenset(folder.name for folder in self._entries if folder not in loaded) - set(self.anchors) \
            - set(self.contents)

    def name_of(self, folder: str | os.PathLike) -> str | None:
        """The name under which the folder at ``folder`` is loaded, else ``None``."""
        return self.names.get(Path(folder).expanduser().resolve())

    def _wanted(self) -> list[Path]:
        """Every user folder to load, in index order, without repeats."""
        out: list[Path] = []
        for directory in self.dirs:
            present = directory.is_dir()
            if present != self._dir_seen.get(directory, present):
                self._log(f"anchors directory {directory} {'appeared' if present else 'is gone'}")
            self._dir_seen[directory] = present
        for folder in self.folders + [f for d in self.dirs for f in anchor_folders(d)]:
            if folder not in out:
                out.append(folder)
        return out

    def scan(self, settle: bool = True) -> bool:
        """Re-read the folders that changed; returns whether ``anchors`` or ``contents`` changed.

        With ``settle``, a changed folder is read only once its files look the same at two scans
        in a row, so a folder still being copied or saved is not read half-written."""
        with self._lock:
            wanted = self._wanted()
            changed = False
            for folder in list(self._entries):
                if folder not in wanted:
                    old = self._entries.pop(folder)
                    if old.anchor is not None:
                        self._log(f"anchor {old.anchor.name!r} removed ({folder} is gone)")
                        changed = True
            for folder in wanted:
                sig = signature(folder)
                entry = self._entries.get(folder)
                if entry is not None and entry.signature == sig:
                    self._pending.pop(folder, None)
                    continue
                if settle and self._pending.get(folder) != sig:
                    self._pending[folder] = sig
                    continue
                self._pending.pop(folder, None)
                before = entry.anchor if entry is not None else None
                anchor = self._load(folder, entry)
                changed |= anchor is not before
                self._entries[folder] = _Entry(folder, sig, anchor)
            if changed or not self.anchors:
                self._publish()
            return changed

    def _load(self, folder: Path, entry: _Entry | None) -> Anchor | None:
        try:
            anchor = load_anchor(folder)
        except AnchorError as exc:
            if entry is not None and entry.anchor is not None:
                self._log(f"{exc}; keeping the version loaded before")
                return entry.anchor
            self._log(f"{exc}; skipped")
            return None
        if entry is not None and entry.anchor is not None and entry.anchor.digest == anchor.digest \
                and entry.anchor.title == anchor.title and entry.anchor.bpm == anchor.bpm:
            return entry.anchor
        if entry is not None and entry.anchor is not None:
            self._log(f"anchor {anchor.name!r} reloaded from {folder}")
        return anchor

    def _publish(self) -> None:
        anchors, contents = dict(self._shipped), dict(self._shipped_contents)
        names: dict[Path, str] = {}
        for folder, entry in self._entries.items():
            if entry.anchor is None:
                continue
            target = anchors if len(entry.anchor.accompaniment) else contents
            name = entry.anchor.name
            if name in anchors or name in contents:
                if entry.anchor is not self._announced.get(folder):
                    self._log(f"anchor {name!r} from {folder}: that name is taken; skipped (rename the folder)")
                continue
            target[name] = entry.anchor
            names[folder] = name
        self._announced = {folder: entry.anchor for folder, entry in self._entries.items()}
        old = {**self.anchors, **self.contents}
        self.reloaded = frozenset(name for name, anchor in {**anchors, **contents}.items()
                                  if name in old and old[name] is not anchor)
        self.anchors, self.contents, self.names = anchors, contents, names

    def start_anchor(self, values: Iterable[str]) -> str | None:
        """The anchor a performance starts with, from the ``--anchor`` values (names or folders):
        the first value that is loaded (folders and names of folders that did not load are passed
        over); a value that is neither a folder nor a known name is returned as it is (for the
        caller's "unknown anchor" error). Without values, the first
        anchor of the ``--anchors`` directories; ``None`` when there is none."""
        for value in values:
            if value in self.anchors:
                return value
            if value in self.failed:
                continue
            if not is_path(value, self.anchors):
                return value
            name = self.name_of(value)
            if name in self.anchors:
                return name
        for folder, name in self.names.items():
            if folder not in self.folders and name in self.anchors:
                return name
        return None


class Rescanner:
    """Calls ``library.scan()`` on its own thread whenever :meth:`poke` is called (the server pokes
    at every bar), at most once per ``min_interval_s``, then ``on_change(library)`` if anything
    changed. An exception in either is one log line; the thread goes on."""

    def __init__(self, library: Library, on_change: Callable[[Library], None], min_interval_s: float = 0.5,
                 log: Callable[[str], None] | None = None) -> None:
        self.library = library
        self.on_change = on_change
        self.min_interval_s = float(min_interval_s)
        self.scans = 0
        self._log = log if log is not None else logger.warning
        self._wake = threading.Event()
        self._worker = Worker(self._run, "vis2mus-anchors", join_s=5.0)

    def start(self) -> "Rescanner":
        self._worker.start()
        return self

    def poke(self) -> None:
        """Ask for a scan (returns at once)."""
        self._wake.set()

    def stop(self) -> None:
        self._worker.stopping.set()
        self._wake.set()
        self._worker.stop()

    def _run(self) -> None:
        while not self._worker.stopping.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._worker.stopping.is_set():
                return
            try:
                if self.library.scan():
                    self.on_change(self.library)
            except Exception as exc:  # a failed scan or update must not end the watching
                self._log(f"anchor re-scan failed: {type(exc).__name__}: {exc}")
            self.scans += 1
            self._worker.stopping.wait(self.min_interval_s)
