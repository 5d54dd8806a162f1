"""Sessions of versions: multi-turn refinement with the full Content history, branches, restarts and
"Edit this", through Studio and the real google-genai SDK against the fake server on loopback."""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path

import pytest

from rag.core import BananaError, BudgetExceeded
from rag.generation import read_provenance
from rag.generation.sessions import FILE_NAME, SessionStore
from rag.studio import Studio
from tests.conftest import SAMPLE, test_settings
from tests.fake_gemini import FakeGemini, image_reply, png_bytes, signed_reply
from tests.test_full_disk import small_disk  # noqa: F401  (pytest fixture)

PRO = "gemini-3-pro-image"
KEY = "sessions-test-key-5e1"


def make_studio(data: Path, embedder, fake: FakeGemini, **changes: object) -> Studio:
    settings = test_settings(data, gemini_api_key=KEY, gemini_base_url=fake.base_url, gemini_retries=0,
                             gemini_model=PRO, **changes)
    return Studio(settings, embedder=embedder)


@pytest.fixture
def pro_studio(tmp_path: Path, embedder, fake_gemini: FakeGemini) -> Studio:
    studio = make_studio(tmp_path, embedder, fake_gemini)
    yield studio
    studio.close()


def pixels(n: int) -> bytes:
    return png_bytes((8, 8), (n, 255 - n, 40))


def test_a_refinement_sends_the_first_turn_with_its_image_and_signature(pro_studio: Studio, fake_gemini: FakeGemini) -> None:
    fake_gemini.push(signed_reply(pixels(1), b"sig-v1"), signed_reply(pixels(2), b"sig-v2"))
    first = pro_studio.generate("a knight with a cape", aspect_ratio="3:4", image_size="2K")
    (v1,) = first.versions
    second = pro_studio.refine(first.session_id, "now make the cape red")
    (v2,) = second.versions

    request = fake_gemini.requests[-1]
    assert request.roles() == ["user", "model", "user"]
    assert request.texts()[0] == "a knight with a cape" and request.texts()[-1] == "now make the cape red"
    assert [data for _, data in request.inline()] == [pixels(1)]  # the model's own image goes back
    assert request.signatures() == [b"sig-v1"]
    assert set(request.modalities()) == {"IMAGE", "TEXT"}  # the per-turn config still asks for images
    assert (request.aspect_ratio(), request.image_size()) == ("3:4", "2K")  # the version's settings carry over
    assert (v1.label, v2.label, v2.parent_id, v2.instruction, v2.model) == ("v1", "v2", v1.id, "now make the cape red", PRO)
    # readable, with a random part that nothing another user sees gives away
    assert re.fullmatch(r"a-knight-with-a-cape-v2-[0-9a-f]{24}\.png", Path(v2.path).name)
    assert first.session_id not in Path(v2.path).name
    assert read_provenance(v2.path)["parents"] == [v1.image_id]


def test_a_branch_from_v1_does_not_carry_v2(pro_studio: Studio, fake_gemini: FakeGemini) -> None:
    fake_gemini.push(*(signed_reply(pixels(i), f"sig-{i}".encode()) for i in (1, 2, 3, 4)))
    sid = pro_studio.generate("a red car").session_id
    pro_studio.refine(sid, "make it blue")
    pro_studio.refine(sid, "add racing stripes")  # v3, from v2
    branch = pro_studio.refine(sid, "make it a convertible", from_version="v1")

    request = fake_gemini.requests[-1]
    assert request.texts()[0] == "a red car" and "make it blue" not in request.texts()
    assert request.signatures() == [b"sig-1"] and [data for _, data in request.inline()] == [pixels(1)]
    session, versions = pro_studio.open_session(sid)
    assert [v.label for v in versions] == ["v1", "v2", "v3", "v4"] and session.n_versions == 4
    by_label = {v.label: v for v in versions}
    assert branch.versions[0].parent_id == by_label["v1"].id and by_label["v3"].parent_id == by_label["v2"].id
    asked = [turn["parts"][0]["text"] for turn in pro_studio.sessions.history(by_label["v3"].id) if turn["role"] == "user"]
    assert asked == ["a red car", "make it blue", "add racing stripes"]


def test_a_restart_resumes_the_session_with_its_history(tmp_path: Path, embedder, fake_gemini: FakeGemini) -> None:
    before = make_studio(tmp_path, embedder, fake_gemini)
    fake_gemini.push(signed_reply(pixels(7), b"sig-before-restart"))
    sid = before.generate("a lighthouse at dusk").session_id
    before.close()

    after = make_studio(tmp_path, embedder, fake_gemini)  # a new process, as far as the data folder knows
    try:
        assert [s.id for s in after.recent_sessions()] == [sid]
        fake_gemini.push(signed_reply(pixels(8), b"sig-after"))
        after.refine(sid[:6], "add a storm")  # the CLI's short id works too
        request = fake_gemini.requests[-1]
        assert request.texts()[0] == "a lighthouse at dusk" and request.signatures() == [b"sig-before-restart"]
        assert [v.label for v in after.open_session(sid)[1]] == ["v1", "v2"]
    finally:
        after.close()


def test_edit_this_starts_from_a_library_image(pro_studio: Studio, fake_gemini: FakeGemini) -> None:
    pro_studio.ingest_folder(SAMPLE / "food")
    asset = pro_studio.store.get([pro_studio.table().iloc[0]["id"]])[0]
    session = pro_studio.start_session(base_asset_id=asset.id, user="ana")
    (original,) = pro_studio.open_session(session.id)[1]
    assert (original.label, original.turn_id, original.image_id, session.user) == ("original", None, asset.id, "ana")

    fake_gemini.push(signed_reply(pixels(3), b"sig-edit"))
    edited = pro_studio.refine(session.id, "put it on a marble counter", user="ana")
    request = fake_gemini.requests[-1]
    assert request.roles() == ["user"] and request.texts() == ["put it on a marble counter"]
    assert len(request.inline()) == 1  # the library image, as this turn's picture
    assert request.aspect_ratio() is None  # an edit keeps the picture's shape unless asked
    (v1,) = edited.versions
    assert v1.parent_id == original.id
    saved = pro_studio.save_versions([original.id, v1.id])
    (added,) = saved.added  # the original is in the library already
    assert [a.id for a in pro_studio.asset(added.id).parents] == [asset.id]
    with pytest.raises(BananaError, match="No asset"):
        pro_studio.start_session(base_asset_id="0" * 64)


def test_n_images_are_sibling_versions_of_one_request(pro_studio: Studio, fake_gemini: FakeGemini) -> None:
    fake_gemini.push(signed_reply(pixels(1), b"a"), signed_reply(pixels(2), b"b"))
    run = pro_studio.generate("two takes on a banana", n=2)
    assert [v.label for v in run.versions] == ["v1", "v2"] and all(v.parent_id is None for v in run.versions)
    fake_gemini.push(signed_reply(pixels(3), b"c"))
    pro_studio.refine(run.session_id, "brighter", from_version=run.versions[1].id)
    assert fake_gemini.requests[-1].signatures() == [b"b"]  # only the chosen sibling's turn
    (attempt, *_) = pro_studio.history()
    assert (attempt.outcome, attempt.images, attempt.cost_usd) == ("ok", 1, pytest.approx(0.134))


# -- the database --------------------------------------------------------------------------------
def test_the_database_is_sqlite_in_wal_mode_with_a_schema_version(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    store.new_session(user="", title="x")
    store.close()
    db = sqlite3.connect(tmp_path / FILE_NAME)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    db.execute("PRAGMA user_version=99")
    db.commit()
    db.close()
    with pytest.raises(BananaError, match="newer Banana Studio"):
        SessionStore(tmp_path)


def test_totals_per_day_and_user(tmp_path: Path) -> None:
    clock = [1_800_000_000.0]
    store = SessionStore(tmp_path, now=lambda: clock[0])

    def spend(user: str, cost: float) -> None:
        attempt = store.begin_attempt(user=user, session_id="", parent_id="", model="m", image_size="", prompt="p",
                                      references=[], requested=1, estimate=cost, budget=None)
        store.end_attempt(attempt, outcome="ok", images=1, cost=cost)

    spend("ana", 0.039)
    spend("bo", 0.134)
    clock[0] += 86400
    spend("ana", 0.24)
    spend("ana", 0.039)
    rows = [(r["user"], r["requests"], r["images"], r["cost_usd"]) for r in store.totals()]
    assert rows == [("ana", 2, 2, pytest.approx(0.279)), ("ana", 1, 1, pytest.approx(0.039)), ("bo", 1, 1, pytest.approx(0.134))]
    assert store.spent() == pytest.approx(0.279) and len(store.attempts(user="ana")) == 3
    store.close()


def test_two_writers_cannot_both_squeeze_under_the_budget(tmp_path: Path) -> None:
    """Two connections (as the app and the CLI would hold) reserve at once; only one fits the cap."""
    stores = [SessionStore(tmp_path), SessionStore(tmp_path)]
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def reserve(store: SessionStore) -> None:
        barrier.wait()
        try:
            store.begin_attempt(user="", session_id="", parent_id="", model="m", image_size="", prompt="p",
                                references=[], requested=1, estimate=0.039, budget=0.05)
            outcomes.append("sent")
        except BudgetExceeded:
            outcomes.append("refused")

    threads = [threading.Thread(target=reserve, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused", "sent"]
    assert [a.outcome for a in stores[0].attempts()] in (["refused", "pending"], ["pending", "refused"])
    for s in stores:
        s.close()


def test_unknown_ids_are_sentences(pro_studio: Studio, fake_gemini: FakeGemini) -> None:
    with pytest.raises(BananaError, match="is not a session here.*python -m rag sessions"):
        pro_studio.refine("nope", "x")
    fake_gemini.push(image_reply(pixels(1)))
    sid = pro_studio.generate("a cat").session_id
    with pytest.raises(BananaError, match="not a version of this session"):
        pro_studio.refine(sid, "x", from_version="v9")
    assert len(fake_gemini.requests) == 1


def test_a_full_disk_is_a_sentence_and_the_database_recovers(small_disk: Path) -> None:  # noqa: F811
    from tests.test_full_disk import fill

    store = SessionStore(small_disk)
    session = store.new_session(user="", title="before the disk filled")
    filler = fill(small_disk, leave=0)
    with pytest.raises(BananaError, match=r"sessions database .* \(the disk is full; free some space and try again\)"):
        store.new_session(user="", title="x" * 200_000)
    filler.unlink()
    assert [s.id for s in store.sessions()] == [session.id]  # nothing half-written
    store.new_session(user="", title="after")
    assert len(store.sessions()) == 2
    store.close()


def test_each_image_is_kept_as_it_arrives_and_a_later_failure_keeps_it(pro_studio: Studio, fake_gemini: FakeGemini) -> None:
    from tests.fake_gemini import finish_reply

    fake_gemini.push(signed_reply(pixels(1), b"kept"), finish_reply("IMAGE_SAFETY"))
    run = pro_studio.generate("two lamps", n=2)
    (v1,) = run.versions
    assert Path(v1.path).is_file() and "Stopped after 1 of 2 requests" in run.result.text and "IMAGE_SAFETY" in run.result.text
    (attempt,) = pro_studio.history()
    assert (attempt.outcome, attempt.images, attempt.requested, attempt.version_ids) == ("ok", 1, 2, [v1.id])
    assert attempt.cost_usd == pytest.approx(0.134)  # one image paid for, not two


def test_a_parent_version_never_saved_is_named_not_called_lost(pro_studio: Studio, fake_gemini: FakeGemini) -> None:
    """Issue 26 point 13: v2 saved alone; its page names v1 as a version of its session, not as deleted."""
    from ui.asset import page_values

    fake_gemini.push(signed_reply(pixels(1), b"sig-1"), signed_reply(pixels(2), b"sig-2"))
    sid = pro_studio.generate("a lantern").session_id
    (v2,) = pro_studio.refine(sid, "make it glow").versions
    pro_studio.save_versions([v2.id])
    (v1,) = [v for v in pro_studio.open_session(sid)[1] if v.label == "v1"]
    details = pro_studio.asset(v2.image_id)
    assert details.unsaved_parents == {v1.image_id: f"v1 of session {sid}"}
    parents_md = page_values(pro_studio, v2.image_id, [])[11]
    assert f"v1 of session {sid} (not in the library)" in parents_md and "no longer" not in parents_md
