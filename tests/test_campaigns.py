"""Campaigns: one template over a folder, shared references, several ratios; failures stay with their item,
the budget is checked before anything is sent, review and save. Real SDK against the fake server."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from rag.core import BananaError, BudgetExceeded
from rag.studio import Studio
from tests.conftest import SAMPLE, test_settings
from tests.fake_gemini import FakeGemini, Recorded, Reply, error_reply, image_reply, png_bytes
from tests.test_auto_refs import sent

KEY = "campaign-key-41d"
TEMPLATE = "A premium ad photo of {name} on a marble counter, soft light"
PRODUCTS = sorted(SAMPLE.joinpath("food").iterdir())[:5]
LOGO = SAMPLE / "office"


def product_library(root: Path) -> Path:
    """``products/`` with five images and ``brand/`` with one (the shared reference)."""
    for p in PRODUCTS:
        (root / "products").mkdir(parents=True, exist_ok=True)
        shutil.copy(p, root / "products" / p.name)
    (root / "brand").mkdir()
    shutil.copy(sorted(LOGO.iterdir())[0], root / "brand" / "logo.png")
    return root


def name_of(path: Path) -> str:
    return " ".join(path.stem.replace("_", " ").replace("-", " ").split())


def answer(fail: str = "") -> callable:
    """Each item's request answered by its text: an image, or 500s for the item named ``fail``."""
    def route(recorded: Recorded) -> object:
        text = " ".join(recorded.texts())
        if fail and f" {fail} on" in text:
            return error_reply(500, "INTERNAL", "fake outage")
        return image_reply(png_bytes(color=(len(text) % 255, 100, 0)))

    return route


@pytest.fixture
def line(tmp_path: Path, embedder, fake_gemini: FakeGemini) -> Studio:
    settings = test_settings(tmp_path / "data", gemini_api_key=KEY, gemini_base_url=fake_gemini.base_url,
                             gemini_retries=0, campaign_concurrency=2)
    studio = Studio(settings, embedder=embedder)
    studio.ingest_folder(product_library(tmp_path / "lib"))
    yield studio
    studio.close()


def logo_id(studio: Studio) -> str:
    return studio.campaign_assets(folder="brand")[0][0].id


def test_a_folder_campaign_sends_each_item_with_the_shared_reference(line: Studio, fake_gemini: FakeGemini) -> None:
    fake_gemini.route = answer(fail=name_of(PRODUCTS[2]))
    logo = line.get([logo_id(line)])[0]
    plan = line.plan_campaign(TEMPLATE, folder="products", refs=[logo.id], aspect_ratios=["1:1", "4:5"], name="Spring")
    assert (len(plan.requests), plan.images, plan.estimate_usd) == (10, 10, pytest.approx(0.67))
    campaign = line.start_campaign(plan)
    assert fake_gemini.requests == []  # planning and recording send nothing
    seen: list[tuple[int, int]] = []
    line.run_campaign(campaign.id, progress=lambda done, total, _m: seen.append((done, total)))
    assert len(fake_gemini.requests) == 10 and seen[-1] == (10, 10)
    sources = {name_of(p): p for p in PRODUCTS}
    by_item = sorted((r.texts()[0], r.aspect_ratio(), r) for r in fake_gemini.requests)
    assert {t for t, _, _ in by_item} == {TEMPLATE.format(name=n) for n in sources}
    for text, _, request in by_item:
        asset = next(a for a in line.campaign_assets(folder="products")[0] if text == TEMPLATE.format(name=name_of(Path(a.path))))
        assert [d for _, d in request.inline()] == [sent(asset.path), sent(logo.path)]
    assert sorted(r for _, r, _ in by_item) == ["1:1"] * 5 + ["4:5"] * 5
    campaign, items = line.open_campaign(campaign.id)
    failed = [i for i in items if i.status == "failed"]
    assert {i.asset_name for i in failed} == {PRODUCTS[2].name} and all("server error" in i.error for i in failed)
    assert sum(i.status == "done" for i in items) == 8 and campaign.status == "stopped"
    assert len(line.history(50)) == 10  # every request is an attempt in History


def test_over_the_budget_nothing_is_sent(line: Studio, fake_gemini: FakeGemini) -> None:
    line.settings = line.settings.with_(gemini_daily_budget_usd=0.1)
    fake_gemini.route = answer()
    plan = line.plan_campaign(TEMPLATE, folder="products", aspect_ratios=["1:1"])
    assert not plan.fits() and "$0.10 of today's budget left" in plan.summary()
    with pytest.raises(BudgetExceeded, match="nothing was sent"):
        line.start_campaign(plan)
    assert fake_gemini.requests == [] and line.campaigns() == []


def test_bad_templates_and_choices_are_sentences(line: Studio) -> None:
    with pytest.raises(BananaError, match=r"unknown placeholder \{price\}"):
        line.plan_campaign("An ad for {price}", folder="products")
    with pytest.raises(BananaError, match="braces do not match"):
        line.plan_campaign("An ad for {name", folder="products")
    with pytest.raises(BananaError, match="No library images match folder nowhere"):
        line.plan_campaign(TEMPLATE, folder="nowhere")
    with pytest.raises(BananaError, match="one way"):
        line.plan_campaign(TEMPLATE, folder="products", tag="x")


def test_review_save_and_regenerate(line: Studio, fake_gemini: FakeGemini) -> None:
    fake_gemini.route = answer()
    logo = logo_id(line)
    campaign = line.start_campaign(line.plan_campaign(TEMPLATE, folder="products", refs=[logo], name="Spring line",
                                                         user="ana"))
    line.run_campaign(campaign.id, user="ana")
    items = line.open_campaign(campaign.id)[1]
    first, second, third = (i.version_ids[0] for i in items[:3])
    line.review_campaign(campaign.id, [first, second], "approved")
    line.review_campaign(campaign.id, [third], "rejected")
    report = line.save_approved(campaign.id)
    assert len(report.added) == 2
    for saved, item in zip(sorted(report.added, key=lambda a: a.meta["prompt"]), sorted(items[:2], key=lambda i: i.prompt)):
        assert saved.meta["parents"] == [item.asset_id, logo] and saved.meta["campaign"] == "Spring line"
        assert saved.meta["tags"] == ["campaign:Spring line", "ai-generated"]  # the tag filter finds AI-made images
    assert len(line.campaign_assets(tag="campaign:Spring line")[0]) == 2  # filterable later
    with pytest.raises(BananaError, match="Nothing new to save"):
        line.save_approved(campaign.id)  # never saved twice
    review = line.campaign_review(campaign.id)  # what the tab, the API and the CLI count and choose from
    assert [i.seq for i in review.rejected] == [items[2].seq] and review.counts["done"] == review.total == len(items)
    seen: list[tuple[int, int, int]] = []
    [again] = line.regenerate_rejected(campaign.id, progress=lambda done, total, item: seen.append((done, total, item.seq)))
    assert seen == [(0, 1, items[2].seq)]
    assert len(again.version_ids) == 2 and again.version_ids[0] == third
    assert line.campaign_review(campaign.id).rejected == []  # its newest image awaits review
    newest = again.version_ids[1]  # Approve the rest on a page showing these: the one marked since keeps its mark
    assert line.review_campaign(campaign.id, [second, newest], "approved", only_waiting=True) == [newest]
    line.review_campaign(campaign.id, [newest], "")
    assert len(fake_gemini.requests) == 6
    assert not line.cancel_campaign(campaign.id)  # not left marked running (it stayed so until a restart)
    assert len(line.regenerate_item(campaign.id, items[2].seq).version_ids) == 3
    # what it cost so far: every paid request, the two regenerations too (the estimate covered the first run only)
    spent = line.campaign_review(campaign.id).spent
    assert spent == pytest.approx(7 * 0.067) and spent > campaign.estimate_usd


def test_another_users_campaign_is_not_found(line: Studio, fake_gemini: FakeGemini) -> None:
    campaign = line.start_campaign(line.plan_campaign(TEMPLATE, folder="products", user="ana"))
    assert [c.id for c in line.campaigns(user="ana")] == [campaign.id] and line.campaigns(user="bo") == []
    with pytest.raises(BananaError, match="is not a campaign here"):
        line.open_campaign(campaign.id, user="bo")
    with pytest.raises(BananaError, match="is not a campaign here"):
        line.run_campaign(campaign.id, user="bo")
    assert fake_gemini.requests == []


def test_a_search_tag_or_chosen_rows_choose_the_images(line: Studio) -> None:
    products = line.campaign_assets(folder="products")[0]
    chosen = line.plan_campaign(TEMPLATE, ids=[products[3].id, products[0].id], aspect_ratios=["1:1", "9:16"])
    assert [(a.id, r) for a, r, _ in chosen.requests] == [(products[3].id, "1:1"), (products[3].id, "9:16"),
                                                          (products[0].id, "1:1"), (products[0].id, "9:16")]
    found = line.plan_campaign(TEMPLATE, query="a bowl of fruit", limit=3)
    assert [a.id for a, _, _ in found.requests] == [h.asset.id for h in line.search("a bowl of fruit", k=3)]
    line.add_tags([products[1].id], "hero")
    tagged = line.plan_campaign("{name} ({tags}) from {folder}", tag="hero")
    assert [p for _, _, p in tagged.requests] == [f"{name_of(Path(products[1].path))} (hero) from products"]


def test_cancel_stops_between_items_and_resume_finishes(line: Studio, fake_gemini: FakeGemini) -> None:
    line.settings = line.settings.with_(campaign_concurrency=1)
    arrived, release = threading.Event(), threading.Event()

    def first_waits(recorded: Recorded) -> Reply:  # the first item's reply waits until the test has cancelled
        if not arrived.is_set():
            arrived.set()
            release.wait(30)  # (the fake asks ``route`` under its lock: one item at a time runs here anyway)
        return image_reply(png_bytes())

    fake_gemini.route = first_waits
    campaign = line.start_campaign(line.plan_campaign(TEMPLATE, folder="products"))
    cancel = threading.Event()
    worker = threading.Thread(target=line.run_campaign, args=(campaign.id,), kwargs={"cancel": cancel})
    worker.start()
    try:
        assert arrived.wait(30), "the campaign sent no request in 30 s"
        assert line.cancel_campaign(campaign.id) and cancel.is_set()
    finally:
        release.set()
        worker.join(timeout=30)
    assert not worker.is_alive(), "the campaign still runs 30 s after it was cancelled"
    campaign = line.open_campaign(campaign.id)[0]
    counts = line.campaign_store.counts(campaign.id)
    assert campaign.status == "cancelled" and counts["done"] == 1 and counts["pending"] == 4
    assert not line.cancel_campaign(campaign.id)  # no longer running
    assert line.run_campaign(campaign.id).status == "done" and len(fake_gemini.requests) == 5
