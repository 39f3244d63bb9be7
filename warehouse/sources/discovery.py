"""Finding a stream's files under a Marcus root: each file once, each unreadable place named."""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from warehouse.errors import SourceError


@dataclass(frozen=True)
class SourceFile:
    """One file found under a Marcus root."""

    path: Path
    display: str  # path relative to the Marcus root: the `_source` lineage value
    size: int
    mtime_ns: int
    # (device, inode) when found: a file opened later under this name must still be this one.
    inode: tuple[int, int] | None = None

    @property
    def compressed(self) -> bool:
        """Whether the file is gzip-compressed (offsets then count decompressed bytes)."""
        return self.path.name.endswith(".gz")

    @property
    def final(self) -> bool:
        """Whether the file is a rotated generation that will never grow again."""
        return self.compressed or self.path.name.endswith(".1")


def _natural_key(name: str) -> list[object]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def discover(root: Path, patterns: tuple[str, ...]) -> tuple[list[SourceFile], list[SourceError]]:
    """Files under `root` matching `patterns` (in pattern order, then by name), and path errors.

    A file reached under two names (a symlink or hard link beside it) is listed once, by its
    own name. A directory that exists but cannot be listed is one error naming it; one that
    does not exist yet is not an error (Marcus creates each log directory with its first
    record), but a symlink to nowhere or in a loop is.
    """
    root_error = _directory_error(root, root)
    if root_error is not None:
        raise root_error
    found: list[SourceFile] = []
    errors: list[SourceError] = []
    listings: dict[Path, list[str]] = {}
    failed: set[Path] = set()
    by_inode: dict[tuple[int, int], int] = {}
    seen: set[Path] = set()
    for pattern in patterns:
        folder, _, name_pattern = pattern.rpartition("/")
        directory = root / folder if folder else root
        if directory not in listings:
            listings[directory], error = _list_directory(root, directory)
            if error is not None:
                errors.append(error)
                failed.add(directory)
        names = [n for n in listings[directory] if fnmatch.fnmatchcase(n, name_pattern)]
        for name in sorted(names, key=_natural_key):
            path = directory / name
            if path in seen or directory in failed:
                continue
            seen.add(path)
            try:
                info = path.stat()
            except PermissionError:
                # A file's own mode never stops a stat: its directory cannot be searched.
                errors.append(SourceError(directory, "cannot read directory (permission denied)"))
                failed.add(directory)
                continue
            except FileNotFoundError:
                if _gone(path):
                    continue  # rotated or deleted since it was listed: as if never listed
                errors.append(SourceError(path, "symlink to a missing file"))
                continue
            except OSError as exc:
                errors.append(SourceError(path, f"cannot stat ({exc.strerror})"))
                continue
            if stat.S_ISDIR(info.st_mode):
                errors.append(SourceError(path, "expected a JSONL file, found a directory"))
                continue
            if not stat.S_ISREG(info.st_mode):
                errors.append(SourceError(path, "not a regular file"))
                continue
            if not os.access(path, os.R_OK):
                if _gone(path):
                    continue
                errors.append(SourceError(path, "permission denied (not readable)"))
                continue
            inode = (info.st_dev, info.st_ino)
            display = path.relative_to(root).as_posix()
            file = SourceFile(path, display, info.st_size, info.st_mtime_ns, inode)
            if inode not in by_inode:
                by_inode[inode] = len(found)
                found.append(file)
            elif found[by_inode[inode]].path.is_symlink() and not path.is_symlink():
                found[by_inode[inode]] = file  # the file's own name, not a link to it
    return found, errors


def _gone(path: Path) -> bool:
    """Whether nothing is left under `path`, not even a symlink."""
    try:
        path.lstat()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False


def _list_directory(root: Path, directory: Path) -> tuple[list[str], SourceError | None]:
    """Names in `directory`; a missing directory has none, an unreadable one is an error."""
    try:
        with os.scandir(directory) as entries:
            return [entry.name for entry in entries], None
    except OSError as exc:
        return [], _directory_error(root, directory, exc)


def _directory_error(root: Path, directory: Path, exc: OSError | None = None) -> SourceError | None:
    """Why `directory` cannot be listed, or None if it is a directory or simply not there yet."""
    if exc is None:
        try:
            info = directory.stat()
        except OSError as error:
            exc = error
        else:
            if stat.S_ISDIR(info.st_mode):
                return None
            return SourceError(directory, "expected a directory, found a file")
    if exc.errno == errno.ELOOP:
        return SourceError(directory, "symlink loop (too many levels of symbolic links)")
    if isinstance(exc, NotADirectoryError):
        return SourceError(directory, "expected a directory, found a file")
    if isinstance(exc, FileNotFoundError):
        if directory == root:
            return SourceError(root, "Marcus directory does not exist")
        for path in (directory, *directory.parents):
            if path == root:
                break
            if path.is_symlink():
                return SourceError(path, "symlink to a missing directory")
        return None
    if isinstance(exc, PermissionError):
        return SourceError(directory, "cannot read directory (permission denied)")
    return SourceError(directory, f"cannot read directory ({exc.strerror or exc})")
