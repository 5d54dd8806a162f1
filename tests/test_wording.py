"""The page's words (issue 26, points 14, 16 and 17): plain language and no setting names, what an image's
file says shown on its page, and an upload's report naming a .zip's duplicates by their path in it and saying
where the upload's tags went. In-process: ui handler functions called directly on one small library."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import gradio as gr
import pytest
from PIL import Image, PngImagePlugin

from rag.studio import Studio
from tests.conftest import test_settings
from ui import history, library_table, search
from ui.asset import page_values
from ui.library import tagged_reasons

SETTING_NAME = re.compile(r"\b(GEMINI|BANANA|MILVUS|CLIP|MAX_UPLOAD|LIBRARY_ROOTS)_?[A-Z_]*\b")


def png(color: tuple[int, int, int], **text: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    buf = io.BytesIO()
    Image.new("RGB", (24, 24), color).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, embedder) -> Studio:
    """Two uploads: a titled lantern (with a title, description and keywords written into it) and a plain one."""
    data = tmp_path_factory.mktemp("wording")
    (data / "lantern.png").write_bytes(png((200, 120, 0), Title="Brass *lantern*", Description="A lantern at dusk",
                                           Keywords="lamp, <b>glow</b>"))
    (data / "plain.png").write_bytes(png((10, 20, 30)))
    s = Studio(test_settings(data / "lib"), embedder=embedder)
    report = s.ingest_uploads([data / "lantern.png", data / "plain.png"], folder="drop")
    assert len(report.added) == 2 and not report.failed
    yield s
    s.close()


def by_name(studio: Studio, name: str):
    (asset,) = [a for a in studio.library_page().assets if a.filename == name]
    return asset


def test_what_the_file_says_is_on_its_page_escaped(small: Studio) -> None:
    """Point 16: the words read from the file at ingest (searchable) are shown, as text, not as Markdown/HTML."""
    lantern = by_name(small, "lantern.png")
    assert "lantern at dusk" in lantern.meta["embedded"]
    details = page_values(small, lantern.id, [])[4]
    assert "**In the file** Brass \\*lantern\\* A lantern at dusk lamp, \\<b\\>glow\\</b\\>" in details
    assert "In the file" not in page_values(small, by_name(small, "plain.png").id, [])[4]


def test_sources_and_headers_are_words(small: Studio) -> None:
    """Point 14: "Uploaded", not the stored code "upload", on the page and in the table; headers in words."""
    lantern = by_name(small, "lantern.png")
    assert "**Source** Uploaded" in page_values(small, lantern.id, [])[4]
    shown = library_table.styled(small.table(limit=10), []).data
    assert list(shown.columns) == ["✓", "File", "Folder", "Source", "Tags", "Width", "Height", "Added", "Id"]
    assert set(shown["Source"]) == {"Uploaded"}
    assert history.COLUMNS[0] == "Image" and "cost_usd" not in history.COLUMNS + history.TOTAL_COLUMNS
    assert history.OUTCOMES["ok"] == "made" and history.OUTCOMES["refused"] == "refused: over the budget"


def test_one_result_is_singular(small: Studio) -> None:
    """Point 14: "1 result", not "1 results"."""
    with gr.Blocks():
        c = search.build(small, gr.State([]))
    like = c.like[0]
    status = like(by_name(small, "plain.png").id, 1, [])[3]
    assert status.startswith("1 result like") and "results" not in status


def test_the_budget_is_said_in_plain_words() -> None:
    """Point 14: History's budget line names no environment variable."""
    capped = history.budget_md({"budget": 2.0, "today": 0.5, "totals": []})
    assert "today's budget of **$2.00** set for this app" in capped
    for text in (capped, history.budget_md({"budget": None, "today": 0.0, "totals": []})):
        assert not SETTING_NAME.search(text), text


def test_upload_report_names_zip_duplicates_by_path_and_says_tags_went_on(small: Studio, tmp_path: Path) -> None:
    """Point 17: a duplicate inside a .zip reads "drop.zip/shoes/again.png"; its tags landing on the library's
    copy is said, in the summary and on its row; the limits name no setting."""
    archive = tmp_path / "drop.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("shoes/again.png", png((10, 20, 30)))  # the same bytes as plain.png
    report = small.ingest_uploads([archive], folder="drop", tags="spring")
    plain = by_name(small, "plain.png")
    assert report.duplicates == [("drop.zip/shoes/again.png", plain.id)]
    assert report.tagged == [plain.id] and "your tags added to 1 of them" in report.summary()
    (row,) = tagged_reasons(report, small.duplicate_reasons(report))
    assert row[0] == "drop.zip/shoes/again.png" and row[1].endswith("; your tags were added to it")
    assert "spring" in small.get([plain.id])[0].meta["tags"]

