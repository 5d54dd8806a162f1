"""Turning what a user dropped (images, .zip archives) into a list of files to ingest, within limits.

An archive is untrusted: its members are checked against the upload's budget (files, expanded
bytes, compression ratio, free disk) from their declared sizes before anything is written, and
read with a cap so a member that lies about its size cannot write more than the budget allows.
"""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from rag.core import Settings, os_error_text
from rag.media.images import is_image_name

MB = 1024 * 1024
# Images barely compress (PNG, JPEG and WebP already are); a member that expands more than this
# is almost certainly a bomb. Small members are exempt: a tiny flat BMP may compress 1000:1.
MAX_ZIP_RATIO = 100
RATIO_EXEMPT_BYTES = 1 * MB
DISK_RESERVE_BYTES = 256 * MB  # never fill the disk to the last byte for an upload


@dataclass
class Expanded:
    """Files ready for ingest, their display names, the subfolder each had inside its archive
    ("" at the top level), and what was refused (with reasons). ``labels`` name each file in the upload's report
    as the user knows it: an archive member by its path inside the archive ("drop.zip/shoes/red.png"), as refused
    members are named; ``names`` is the file name the library keeps ("red.png")."""

    files: list[Path] = field(default_factory=list)
    names: dict[Path, str] = field(default_factory=dict)
    labels: dict[Path, str] = field(default_factory=dict)
    subfolders: dict[Path, str] = field(default_factory=dict)
    refused: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Budget:
    """What one upload may still add: files, and bytes extracted to disk."""

    settings: Settings
    files: int
    bytes: int
    skipped: int = 0  # members passed over unread once the file count ran out

    @property
    def per_file(self) -> int:
        return int(self.settings.max_upload_mb * MB)

    def too_many(self) -> str:
        return f"over the limit of {self.settings.max_upload_files} files per upload set for this app"

    def refuse_member(self, size: int, packed: int, workdir: Path) -> str:
        """Why a member of ``size`` bytes (``packed`` compressed) cannot be extracted, or ""."""
        if size > self.per_file:
            return f"larger than the {self.settings.max_upload_mb:g} MB limit per file set for this app"
        if size > RATIO_EXEMPT_BYTES and size > MAX_ZIP_RATIO * max(packed, 1):
            return (f"it expands {size // max(packed, 1)}:1, far more than any image compresses; "
                    "refused as a possible zip bomb")
        if size > self.bytes:
            return f"the archive expands past the {self.settings.max_upload_total_mb:g} MB limit per upload set for this app"
        if shutil.disk_usage(workdir).free < size + DISK_RESERVE_BYTES:
            return "there is not enough free disk space to unpack it"
        return ""


def expand_uploads(paths: Sequence[str | Path], settings: Settings, workdir: Path) -> Expanded:
    """Check limits and unpack archives into ``workdir``. Members are written under fresh names,
    so one called ``../../etc/x.png`` cannot escape it."""
    budget = _Budget(settings, files=settings.max_upload_files, bytes=int(settings.max_upload_total_mb * MB))
    out = Expanded()
    for raw in paths:
        path = Path(raw)
        name = path.name
        try:
            size = path.stat().st_size
        except OSError:
            out.refused.append((name, "the upload did not arrive (file missing)"))
            continue
        if path.suffix.lower() == ".zip":
            _unzip(path, workdir, budget, out)
        elif budget.files <= 0:
            out.refused.append((name, budget.too_many()))
        elif size > budget.per_file:
            budget.files -= 1
            out.refused.append((name, f"larger than the {settings.max_upload_mb:g} MB limit per file set for this app"))
        else:
            budget.files -= 1
            out.files.append(path)
            out.names[path] = out.labels[path] = name
    if budget.skipped:
        out.refused.append((f"{budget.skipped} more archive member(s)", f"not unpacked: {budget.too_many()}"))
    return out


def _unzip(path: Path, workdir: Path, budget: _Budget, out: Expanded) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        out.refused.append((path.name, "not a valid .zip archive"))
        return
    with archive:
        for n, info in enumerate(archive.infolist()):
            member = PurePosixPath(info.filename)
            label = f"{path.name}/{info.filename}"
            if info.is_dir() or member.name.startswith(".") or "__MACOSX" in member.parts:
                continue
            if not is_image_name(member.name):
                out.refused.append((label, "not an image file type"))
                continue
            if budget.files <= 0:
                budget.skipped += 1
                continue
            budget.files -= 1  # every image member counts, refused or not: the count bounds the work
            problem = budget.refuse_member(info.file_size, info.compress_size, workdir)
            if not problem:
                target = workdir / f"{path.stem}-{n}{member.suffix.lower()}"
                problem = _extract(archive, info, target, min(budget.per_file, budget.bytes), budget)
            if problem:
                out.refused.append((label, problem))
                continue
            out.files.append(target)
            out.names[target], out.labels[target] = member.name, label
            out.subfolders[target] = subfolder(member)


def subfolder(member: PurePosixPath) -> str:
    """The member's folder inside the archive as a folder label: "." and ".." levels dropped
    (a label only: files are stored by content, so no name can lead outside the library)."""
    levels = [p.strip() for p in member.parent.parts if p.strip() and p not in (".", "..", "/")]
    return "/".join("".join(ch if ch.isprintable() else "_" for ch in level) for level in levels)


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, cap: int, budget: _Budget) -> str:
    """Write one member, reading at most ``cap`` bytes whatever its header claims; "" on success."""
    try:
        with archive.open(info) as src:
            data = src.read(cap + 1)
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError) as exc:
        return f"cannot be extracted ({type(exc).__name__})"
    if len(data) > cap:
        return "it expands past the upload limits set for this app; its header lied about its size"
    try:
        target.write_bytes(data)
    except OSError as exc:
        target.unlink(missing_ok=True)
        return f"cannot be unpacked ({os_error_text(exc)})"
    budget.bytes -= len(data)
    return ""
