"""Doors a hostile team member tried (issue 25): ids that are paths, packets that stall the parser,
templates that allocate. Each test failed on the code before its fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.campaigns.plan import FIELDS, check_template
from rag.core import BananaError, GenerationError
from rag.generation.models import MAX_PROMPT_CHARS, model_info
from rag.media.image_text import MAX_XMP_BYTES, embedded_text
from rag.studio import Studio
from tests.conftest import SAMPLE

DC = "http://purl.org/dc/elements/1.1/"


def forged_record(folder: Path, asset_path: Path, kept: str | None) -> Path:
    """A trash record written by someone else: a record of an asset whose file is ``asset_path``."""
    folder.mkdir(parents=True, exist_ok=True)
    record = folder / f"{'ab' * 32}.json"
    asset = {"id": "ab" * 32, "path": str(asset_path), "filename": asset_path.name, "folder": "x", "width": 1,
             "height": 1, "format": "PNG", "bytes": 1, "created": 0.0, "source": "upload"}
    record.write_text(json.dumps({"asset": asset, "vector": np.zeros(512).tolist(), "deleted": 0.0, "file": kept}))
    return record


def test_restore_takes_only_ids_that_are_trash_entries(studio: Studio, tmp_path: Path) -> None:
    victim = tmp_path / "users.txt"
    victim.write_text("alice:secret")
    uploaded = forged_record(tmp_path / "gradio-upload", victim, kept=str(victim))  # /gradio_api/upload's answer
    restored, problems = studio.restore([str(uploaded.with_suffix("")), "../../users", "/etc/passwd"])
    assert restored == [] and len(problems) == 3 and all("not in the Trash" in why for _, why in problems)
    assert victim.read_text() == "alice:secret" and studio.count() == 0


def test_a_tampered_trash_record_cannot_move_files_outside_the_app(studio: Studio, tmp_path: Path) -> None:
    victim = tmp_path / "sessions.db"
    victim.write_text("private")
    trash = studio.settings.trash_dir
    forged_record(trash, victim, kept="../../sessions.db")  # the kept file names a path
    assert studio.restore(["ab" * 32])[0] == [] and victim.read_text() == "private"
    outside = tmp_path / "elsewhere" / "x.png"
    forged_record(trash, outside, kept="kept.png")  # a real kept file, to go back outside the app's folders
    (trash / "kept.png").write_bytes((SAMPLE / "food" / "honey.png").read_bytes())
    restored, ((_, why),) = studio.restore(["ab" * 32])
    assert restored == [] and "outside the app's own folders" in why and not outside.exists()


def xmp_png(path: Path, packet: bytes) -> Path:
    from PIL import Image

    Image.new("RGB", (8, 8), (1, 2, 3)).save(path, "PNG", pnginfo=_png_info(packet))
    return path


def _png_info(packet: bytes):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", packet.decode())
    return info


def test_a_hostile_xmp_packet_is_parsed_in_linear_time(studio: Studio, tmp_path: Path) -> None:
    from PIL import Image

    opening = f"<x:xmpmeta xmlns:x='adobe:ns:meta/' xmlns:dc='{DC}'>".encode()
    hostile = xmp_png(tmp_path / "bomb.png", opening + b"<dc:title>" * 25_000)  # 30 s in the old pattern
    entity = xmp_png(tmp_path / "entity.png", b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]><x>&a;&a;</x>')
    # a parser, not a pattern: a commented-out title is no title (the pattern read it)
    good = xmp_png(tmp_path / "good.png", opening + b"<!-- <dc:title>old</dc:title> --><dc:title>Acme &amp; Co"
                   b"</dc:title></x:xmpmeta>")
    with Image.open(hostile) as a, Image.open(entity) as b, Image.open(good) as c:
        assert (embedded_text(a), embedded_text(b), embedded_text(c)) == ("", "", "Acme & Co")
    report = studio.ingest_files([hostile, good])
    assert len(report.added) == 2 and not report.failed  # the image itself is fine: only its words are dropped
    assert MAX_XMP_BYTES <= 1 << 20


@pytest.mark.parametrize("template", ["{name:x>20000000}", "{name:%}", "{name!r}", "{name[0]}", "{name.__class__}",
                                      "{}", "{0}"])
def test_placeholders_are_plain_fields_only(template: str) -> None:
    with pytest.raises(BananaError, match="unknown placeholder") as err:
        check_template(f"An ad for {template}")
    assert all(f"{{{f}}}" in str(err.value) for f in FIELDS)


def test_prompts_and_templates_have_a_length_limit(studio: Studio) -> None:
    with pytest.raises(BananaError, match="at most 10,000"):
        check_template("x" * (MAX_PROMPT_CHARS + 1))
    with pytest.raises(GenerationError, match="shorten it to at most 10,000"):
        model_info("gemini-3.1-flash-image").check("x" * (MAX_PROMPT_CHARS + 1), 0, "1:1", "1K", 1)
    shutil.copy(SAMPLE / "food" / "honey.png", studio.settings.data_dir / "honey.png")
    folder = "line-" + "f" * 100
    studio.ingest_files([studio.settings.data_dir / "honey.png"], folder=folder)
    long = "{folder} " + "y" * (MAX_PROMPT_CHARS - 9)  # fits as written; with the folder filled in it does not
    with pytest.raises(BananaError, match="makes a prompt of"):
        studio.plan_campaign(long, folder=folder)


@pytest.mark.parametrize("name", ["spring\nlaunch", "x" * 200_000, "tab\there"])
def test_a_campaign_name_is_checked_like_a_folder(studio: Studio, name: str) -> None:
    shutil.copy(SAMPLE / "food" / "honey.png", studio.settings.data_dir / "honey.png")
    studio.ingest_files([studio.settings.data_dir / "honey.png"], folder="line")
    with pytest.raises(BananaError, match="campaign name"):
        studio.plan_campaign("An ad for {name}", folder="line", name=name)


def test_a_campaign_tag_keeps_the_tag_rules_whatever_the_name() -> None:
    from rag.library.assets import MAX_TAG_CHARS, campaign_tag, clean_tags

    assert campaign_tag("Spring line") == "campaign:Spring line"
    long = campaign_tag("A very long campaign name for the whole spring range")
    assert len(long) <= MAX_TAG_CHARS and clean_tags([long]) == [long]  # an edit of its tags is never refused


def test_an_unsaved_version_cannot_be_fetched_by_rebuilding_its_name(tmp_path: Path, embedder,
                                                                      fake_gemini) -> None:
    from rag.generation.provenance import readable_stem
    from tests.appserver import running_app
    from tests.conftest import test_settings
    from tests.fake_gemini import png_bytes, signed_reply
    from tests.test_app_security import fetch

    settings = test_settings(tmp_path, gemini_api_key="doors-key", gemini_base_url=fake_gemini.base_url)
    studio = Studio(settings, embedder=embedder)
    fake_gemini.push(signed_reply(png_bytes(color=(1, 1, 1)), b"a"), signed_reply(png_bytes(color=(2, 2, 2)), b"b"))
    try:
        v1 = studio.generate("alice's secret launch", user="alice").versions[0]
        v2 = studio.refine(v1.session_id, "now in gold", user="alice").versions[0]
        (saved,) = studio.save_versions([v1.id], user="alice").added  # shared with the team, with its provenance
        shown = json.dumps(saved.to_dict())
        with running_app(studio) as url:
            assert fetch(f"{url}gradio_api/file={v2.path}")[0] == 200  # the owner's page shows it
            session = saved.meta["provenance"]["session_id"]
            for guess in (f"{readable_stem(saved.meta['prompt'])}-v2-{session}.png", Path(v1.path).name.replace("-v1-", "-v2-")):
                assert fetch(f"{url}gradio_api/file={settings.outputs_dir / guess}")[0] in (403, 404)
        assert Path(v2.path).name.rsplit("-", 1)[-1] not in shown  # nothing in the shared record gives it away
    finally:
        studio.close()


def test_two_resumes_at_once_submit_one_paid_batch_job(tmp_path: Path, embedder, fake_gemini) -> None:
    import threading

    from tests.test_campaign_batch import open_studio
    from tests.test_campaigns import TEMPLATE, answer, product_library

    studio = open_studio(tmp_path, embedder, fake_gemini)
    fake_gemini.route, fake_gemini.batch_delay = answer(), 2.0  # the first submission is still on its way
    outcomes: list[str] = []
    try:
        studio.ingest_folder(product_library(tmp_path / "lib"))
        plan = studio.plan_campaign(TEMPLATE, folder="products", batch=True, name="Twice")
        campaign = studio.start_campaign(plan)  # recorded; its submission never went through

        def resume() -> None:
            try:
                outcomes.append(studio.resume_campaign(campaign.id).batch_job)
            except BananaError as exc:
                outcomes.append(str(exc))

        threads = [threading.Thread(target=resume) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert len(fake_gemini.batches) == 1 and "batches/job1" in outcomes  # one job, paid once
        assert any(o.startswith("This campaign is already running (since") for o in outcomes) or outcomes.count(
            "batches/job1") == 2  # the other was told, or came after and polled the same job
        assert [a.prompt.startswith("[batch]") for a in studio.history()] == [True]
    finally:
        studio.close()


def test_a_second_process_is_told_the_campaign_is_running(tmp_path: Path, fake_gemini, cli) -> None:
    """A campaign runs in a real process; this process (the ``cli`` fixture: ``python -m rag`` in-process, the
    second process here) is told it is running. The library is made in-process too, then let go for the child."""
    import os
    import subprocess
    import sys
    import threading
    import time

    from milvus_lite import server_manager_instance

    from rag.core import Settings
    from tests.conftest import ROOT, cli_environ
    from tests.fake_gemini import FakeGemini, image_reply, png_bytes
    from tests.test_campaign_cli import campaign_args, gemini_env
    from tests.test_campaigns import PRODUCTS, TEMPLATE, name_of, product_library

    data = tmp_path / "data"
    assert cli(["ingest", str(product_library(tmp_path / "lib")), "-q"], data).returncode == 0
    server_manager_instance.release_server(Settings.from_env(cli_environ(data)).milvus_uri)  # as its exit would
    slow = TEMPLATE.format(name=name_of(PRODUCTS[1]))
    held, release = threading.Event(), threading.Event()

    def route(recorded):  # item 2 is answered only once the second process has been told
        if recorded.texts()[0] == slow and not held.is_set():
            held.set()
            release.wait(60)  # the fake asks ``route`` under its lock: it answers no one else meanwhile
        return image_reply(png_bytes())

    fake_gemini.route = route
    env = {**os.environ, "CLIP_PRETRAINED": "none", "BANANA_DATA_DIR": str(data), "CAMPAIGN_CONCURRENCY": "1",
           **gemini_env(fake_gemini)}
    first = subprocess.Popen([sys.executable, "-m", "rag", *campaign_args("--name", "Spring", "-q")], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not held.wait(0.05):
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            assert time.monotonic() < deadline, "the campaign's process sent no second item in 120 s"
        (campaign,) = json.loads(cli(["campaigns", "--json"], data).stdout)["campaigns"]
        with FakeGemini() as other:  # the second process's Gemini (the first's is busy holding item 2)
            second = cli(["campaign", "--resume", campaign["id"]], data, **gemini_env(other))
        assert second.returncode != 0 and "already running (since" in second.stderr
        assert other.requests == []  # told before anything was paid for
        release.set()
        assert first.wait(timeout=120) == 0
    finally:
        release.set()
        first.kill()
    sent = [(r.texts()[0], r.aspect_ratio()) for r in fake_gemini.answered]
    assert len(sent) == 10 and len(set(sent)) == 10  # every item paid once


def test_searches_are_bounded_before_any_work(sample_studio: Studio) -> None:
    with pytest.raises(BananaError, match="at most 10 words"):
        sample_studio.search("cat " + " ".join(f"-word{i}" for i in range(11)))  # each would be a CLIP encode
    with pytest.raises(BananaError, match="at most 1,000 characters"):
        sample_studio.search("cat " * 400)
    for folders, tags in ((["food\x01"], []), ([], ["a\x00b"])):
        with pytest.raises(BananaError, match="control characters") as err:
            sample_studio.search("cat", folders=folders, tags=tags)
        assert "damaged" not in str(err.value)


def test_a_campaign_says_how_big_it_may_be(studio: Studio) -> None:
    from rag.campaigns import Campaign
    from rag.campaigns.plan import MAX_CAMPAIGN_IMAGES, make_plan
    from rag.core import Asset

    with pytest.raises(BananaError, match="600 images are chosen; a campaign covers at most 500"):
        studio.plan_campaign("An ad for {name}", ids=[f"{i:064x}" for i in range(600)])
    assets = [Asset(id=f"{i:064x}", path=f"/x/{i}.png", filename=f"{i}.png", folder="f", width=1, height=1,
                    format="PNG", bytes=1, created=0.0, source="upload") for i in range(150)]
    ratios = ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9", "1:4", "4:1", "1:8", "8:1"]
    campaign = Campaign(id="", created=0.0, user="", name="Big", source="ids", template="An ad for {name}",
                        model="gemini-3.1-flash-image", image_size="1K", aspect_ratios=ratios, per_item=1,
                        shared_refs=[], mode="now", status="planned")
    with pytest.raises(BananaError, match=f"would make 2,100 images; one campaign makes at most {MAX_CAMPAIGN_IMAGES:,}"):
        make_plan(campaign, assets, [], studio.model_list, studio.sessions, None)


def test_a_search_answers_while_the_whole_library_is_being_read(sample_studio: Studio) -> None:
    """An export, a backup or a grid rebuild reads every record page by page; between pages the store is free."""
    import threading

    pages = sample_studio.store.iter_records(batch=2)  # many pages: the reader pauses between each
    first = next(pages)
    answered: list[int] = []
    searcher = threading.Thread(target=lambda: answered.append(len(sample_studio.search("a red car", k=3))))
    searcher.start()
    searcher.join(timeout=60)  # the old store held its lock across the paused reader: this waited forever
    rest = sum(len(p) for p in pages)
    assert answered == [3] and len(first) + rest == sample_studio.count()
