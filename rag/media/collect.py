"""Which files a folder holds, and names safe to store and show: the collect stage of an ingest.

A symbolic link leading outside the folder is refused (indexing a shared folder must not pull in
files from elsewhere on the machine), and names that are not UTF-8 are reported, not stored.
"""

from __future__ import annotations

import os
from pathlib import Path

from rag.media.images import is_image_name

# Longest values the store's VARCHAR fields take (see rag/store/schema.py), in UTF-8 bytes.
MAX_PATH_BYTES, MAX_NAME_BYTES, MAX_FOLDER_BYTES = 4096, 255, 1024


def is_utf8(text: str) -> bool:
    """False for names holding bytes that are not UTF-8 (Python keeps them as lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown_path(path: Path) -> str:
    """A path for a report: bytes that are not UTF-8 are shown as escapes (\\xff) instead of breaking output."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def display_name(name: str) -> str:
    """A file name safe to store and show: one path component, printable, valid UTF-8, <= 255 bytes."""
    try:  # bytes that were not UTF-8 (os.fsdecode's escapes) become one U+FFFD each
        name = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        name = name.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch if ch.isprintable() else "_" for ch in name).strip()
    if name in ("", ".", ".."):
        return "unnamed"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        ext = dot + ext if stem and len(ext) <= 10 else ""
        keep = name[: len(name) - len(ext)] if ext else name
        while len((keep + "…" + ext).encode("utf-8")) > MAX_NAME_BYTES:
            keep = keep[:-1]
        name = keep + "…" + ext
    return name


def collect_files(root: Path, *, follow_outside: bool = False) -> tuple[list[tuple[Path, str]], list[str], list[tuple[str, str]]]:
    """Image files under ``root`` with their folder tag; also non-images and refused links.

    A symbolic link that leads outside ``root`` is refused: indexing a shared folder must not
    pull in files from elsewhere on the machine.
    """
    root = Path(root)
    base = root.resolve()
    images: list[tuple[Path, str]] = []
    ignored: list[str] = []
    refused: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in list(dirnames):  # links to folders are not followed; say so when they lead away
            path = Path(dirpath) / name
            if path.is_symlink() and not follow_outside:
                try:
                    outside = not path.resolve(strict=True).is_relative_to(base)
                except (OSError, RuntimeError):
                    outside = True
                if outside:
                    refused.append((shown_path(path), "a symbolic link to a folder outside the folder (not followed)"))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not is_image_name(name):
                ignored.append(shown_path(path))
                continue
            if not is_utf8(str(path)):
                refused.append((shown_path(path), "the file name is not valid UTF-8 text; rename the file to index it"))
                continue
            if path.is_symlink() and not follow_outside:
                try:
                    target = path.resolve(strict=True)
                except FileNotFoundError:
                    refused.append((str(path), "a symbolic link whose target does not exist"))
                    continue
                except (OSError, RuntimeError):  # a loop of links
                    refused.append((str(path), "a symbolic link that cannot be followed (it loops)"))
                    continue
                if not target.is_relative_to(base):
                    refused.append((str(path), "a symbolic link to a file outside the folder"))
                    continue
            rel_parent = path.parent.relative_to(root).as_posix()
            images.append((path, root.resolve().name if rel_parent == "." else rel_parent))
    return images, ignored, refused
