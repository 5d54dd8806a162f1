"""Turning what a user dropped (images, .zip archives) into a list of files to ingest, within limits."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .config import Settings
from .images import is_image_name


@dataclass
class Expanded:
    """Files ready for ingest, their display names, and what was refused (with reasons)."""

    files: list[Path] = field(default_factory=list)
    names: dict[Path, str] = field(default_factory=dict)
    refused: list[tuple[str, str]] = field(default_factory=list)


def expand_uploads(paths: Sequence[str | Path], settings: Settings, workdir: Path) -> Expanded:
    """Check limits and unpack archives into ``workdir``. Members are written under fresh names,
    so one called ``../../etc/x.png`` cannot escape it."""
    limit_bytes = int(settings.max_upload_mb * 1024 * 1024)
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
            _unzip(path, name, workdir, limit_bytes, out)
        elif size > limit_bytes:
            out.refused.append((name, f"larger than the {settings.max_upload_mb:g} MB limit per file (MAX_UPLOAD_MB)"))
        else:
            out.files.append(path)
            out.names[path] = name
    if len(out.files) > settings.max_upload_files:
        extra = out.files[settings.max_upload_files :]
        out.files = out.files[: settings.max_upload_files]
        for p in extra:
            out.refused.append((out.names.pop(p), f"over the limit of {settings.max_upload_files} files per upload (MAX_UPLOAD_FILES)"))
    return out


def _unzip(path: Path, name: str, workdir: Path, limit_bytes: int, out: Expanded) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        out.refused.append((name, "not a valid .zip archive"))
        return
    with archive:
        for n, info in enumerate(archive.infolist()):
            member = PurePosixPath(info.filename)
            label = f"{name}/{info.filename}"
            if info.is_dir() or member.name.startswith(".") or "__MACOSX" in member.parts:
                continue
            if not is_image_name(member.name):
                out.refused.append((label, "not an image file type"))
                continue
            if info.file_size > limit_bytes:
                out.refused.append((label, "larger than the per-file limit (MAX_UPLOAD_MB)"))
                continue
            target = workdir / f"{path.stem}-{n}{member.suffix.lower()}"
            try:
                with archive.open(info) as src:
                    data = src.read(limit_bytes + 1)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
                out.refused.append((label, f"cannot be extracted ({type(exc).__name__})"))
                continue
            if len(data) > limit_bytes:
                out.refused.append((label, "larger than the per-file limit (MAX_UPLOAD_MB)"))
                continue
            target.write_bytes(data)
            out.files.append(target)
            out.names[target] = member.name

