"""Review links (issue 30): a campaign shown outside the team through a link that expires, may need a password and
takes approvals and comments; every failure of the link reads "not valid"; the owner takes the verdicts over.

One campaign of three results (the fake Gemini) serves every test of the module; the HTTP test runs the real app
with sign-in and asks it as a stranger would: the review page answers, nothing else does."""

from __future__ import annotations

import io
import re
import shutil
import time
from types import SimpleNamespace

import gradio as gr
import httpx
import pytest
from gradio_client import Client
from PIL import Image

from rag.core import BananaError
from rag.reviews import NOT_VALID, LinkNotValid
from rag.studio import Studio
from tests.appserver import running_app
from tests.conftest import SAMPLE, test_settings
from tests.fake_gemini import FakeGemini, image_reply, png_bytes
from ui import contact_sheet
from ui import reviews as review_ui

PAYLOAD = "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\">"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, embedder) -> SimpleNamespace:
    """alice's campaign "Tea launch": three teas, one result each; a team of alice and bob."""
    tmp = tmp_path_factory.mktemp("reviews")
    (tmp / "lib" / "teas").mkdir(parents=True)
    for p in sorted((SAMPLE / "food").iterdir())[:3]:
        shutil.copy(p, tmp / "lib" / "teas" / p.name)
    (tmp / "team.txt").write_text("alice:wonder-1\nbob:builder-2\n")
    with FakeGemini() as fake:
        fake.route = lambda r: image_reply(png_bytes((96, 64), color=(len(" ".join(r.texts())) * 37 % 256, 90, 160)))
        settings = test_settings(tmp / "data", gemini_api_key="reviews-key", gemini_base_url=fake.base_url,
                                 gemini_retries=0, users_file=str(tmp / "team.txt"))
        studio = Studio(settings, embedder=embedder)
        studio.ingest_folder(tmp / "lib")
        plan = studio.plan_campaign("{name}, a premium ad", folder="teas", name="Tea launch", user="alice")
        campaign = studio.run_campaign(studio.start_campaign(plan).id, user="alice")
        yield SimpleNamespace(studio=studio, campaign=campaign, tmp=tmp)
        studio.close()


def _expire(studio: Studio, link_id: str) -> None:
    with studio.reviews.records().sessions.write("expire a link") as db:
        db.execute("UPDATE review_links SET expires = ? WHERE id = ?", (time.time() - 1, link_id))


def test_a_link_keeps_only_hashes_and_every_failure_reads_alike(made: SimpleNamespace) -> None:
    reviews, cid = made.studio.reviews, made.campaign.id
    share = reviews.share(campaign=cid, password="open-sesame", comments=True, user="alice")
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", share.token) and share.url.endswith(f"/review/{share.token}")
    assert abs(share.link.expires - time.time() - 7 * 86400) < 60 and share.link.user == "alice"
    assert [i.label.split(" · ")[1:] for i in reviews.sheet(share.link).items] == [["1:1", "v1"]] * 3
    db = b"".join(p.read_bytes() for p in made.studio.settings.data_dir.glob("sessions.db*"))
    assert share.token.encode() not in db and b"open-sesame" not in db  # only their hashes are kept
    for bad, why in (({"campaign": cid, "days": 31}, "1 to 30 whole days"), ({"campaign": cid, "days": 2.5}, "1 to 30"),
                     ({"campaign": cid, "password": "abc"}, "6 to 200"), ({"ids": ["f" * 64]}, "1 of the chosen images"),
                     ({"campaign": cid, "ids": ["f" * 64]}, "Share one thing")):
        with pytest.raises(BananaError, match=why):
            reviews.share(**bad, user="alice")
    with pytest.raises(BananaError, match="is not a campaign here"):
        reviews.share(campaign=cid, user="bob")  # another user's campaign reads as unknown
    session = made.studio.open_campaign(cid)[1][0].session_id  # each item is a refine session
    assert [i.label[:4] for i in reviews.sheet(reviews.share(session=session, user="alice").link).items] == ["v1: "]
    teas = made.studio.campaign_assets(folder="teas")[0]
    picked = reviews.share(ids=[a.id for a in teas[:2]], user="bob").link
    assert (picked.title, [i.label for i in reviews.sheet(picked).items]) == ("2 images", [a.filename for a in teas[:2]])
    link = reviews.door(share.token)
    assert not reviews.admitted(link) and not reviews.admitted(link, "forged")
    with pytest.raises(LinkNotValid, match=re.escape(NOT_VALID)):
        reviews.admit(link, "open-sesamE")
    assert reviews.admitted(link, reviews.admit(link, "open-sesame"))
    other = reviews.share(campaign=cid, user="alice")
    _expire(made.studio, other.link.id)
    reviews.revoke(share.token, user="alice")  # by its token; an id or the whole address work too
    for token in (share.token, other.token, "x" * 43, "../../etc/passwd", ""):
        with pytest.raises(LinkNotValid, match=re.escape(NOT_VALID)):
            reviews.door(token)
    with pytest.raises(BananaError, match="not a review link here"):
        reviews.revoke(other.link.id, user="bob")


def test_reviewers_notes_reach_the_campaign_when_the_owner_accepts(made: SimpleNamespace) -> None:
    studio, cid = made.studio, made.campaign.id
    link = studio.reviews.door(studio.reviews.share(campaign=cid, comments=True, user="alice").token)
    studio.reviews.note(link, "  Jane\n(client) ", "1:approved", {2: PAYLOAD, 3: ""})
    studio.reviews.note(link, "Jane (client)", "2:approved", {})
    studio.reviews.note(link, "Legal", "3:rejected", {3: "Not this label"})
    for act, comments, why in (("99:approved", {}, "not part of this review"), ("1:comment", {}, "Type a comment"),
                               ("1:approved", {7: "x"}, "not part of this review"), ("1:maybe", {}, "not part"),
                               ("1:comment", {1: "x" * 2001}, "at most 2,000")):
        with pytest.raises(BananaError, match=why):
            studio.reviews.note(link, "Jane", act, comments)
    with pytest.raises(BananaError, match="Type your name"):
        studio.reviews.note(link, " \x00 ", "1:approved", {})
    view_only = studio.reviews.door(studio.reviews.share(campaign=cid, user="alice").token)
    with pytest.raises(BananaError, match="viewing only"):
        studio.reviews.note(view_only, "Jane", "1:approved", {})
    sheet = studio.reviews.sheet(link)
    assert [sheet.verdict(n).verdict for n in (1, 2, 3)] == ["approved", "approved", "rejected"]
    assert sheet.verdict(1).reviewer == "Jane (client)" and [c.comment for c in sheet.comments(2)] == [PAYLOAD]
    assert len(studio.reviews.feedback(campaign=cid, user="alice")) == 4
    with pytest.raises(BananaError, match="not a campaign here"):
        studio.reviews.feedback(campaign=cid, user="bob")
    pending = studio.reviews.pending(cid, user="alice")  # on the review's tiles until the owner accepts them
    tiles = contact_sheet.sheet(studio, studio.campaign_review(cid, user="alice"), pending)
    words = ["Reviewer: ✓", "Reviewer: ✓", "Reviewer: ✗ — Not this label"]
    assert [contact_sheet.reviewer_words(n) for n in pending.values()] == words and all(w in tiles for w in words)
    assert tiles.count('<span class="reviewer approved"') == 2 and 'title="Rejected by Legal, not accepted yet' in tiles
    assert studio.reviews.accept(cid, user="alice") == 3 and studio.reviews.accept(cid, user="alice") == 0
    assert studio.reviews.pending(cid, user="alice") == {}
    with pytest.raises(BananaError, match="not a campaign here"):
        studio.reviews.pending(cid, user="bob")
    review = studio.campaign_review(cid, user="alice")
    versions = [v for i in review.items for v in i.version_ids]
    assert [review.verdicts[v][0] for v in versions] == ["approved", "approved", "rejected"]
    first = studio.version(versions[0])
    on_image = studio.reviews.feedback(image_id=first.image_id, user="alice")
    assert [(n.verdict, n.reviewer) for n, _, _ in on_image] == [("approved", "Jane (client)")]
    assert studio.reviews.feedback(image_id=first.image_id, user="bob") == []  # bob sees no link of alice's
    _, items, notes = studio.reviews.history(link.id, user="alice")
    assert len(items) == 3 and [n.n for n in notes] == [1, 2, 2, 3] and all(n.accepted for n in notes if n.verdict)


def test_share_shares_and_unshare_on_the_command_line(made: SimpleNamespace, cli) -> None:
    data = made.studio.settings.data_dir
    out = cli(["share", "--campaign", made.campaign.id, "--comments", "--days", "3", "--json"], data)
    assert out.returncode == 0, out.stderr
    made_link = __import__("json").loads(out.stdout)
    assert {"url", "token", "expires"} <= set(made_link) and made_link["url"].endswith(made_link["token"])
    assert made_link["comments"] is True and made_link["user"] == "alice"  # the campaign's owner keeps it
    listed = cli(["shares"], data)
    assert made_link["id"] in listed.stdout and "active" in listed.stdout
    assert cli(["unshare", made_link["token"]], data).returncode == 0
    assert "revoked" in cli(["shares", made_link["id"]], data).stdout
    refused = cli(["share", "--ids", "nope", "--days", "99"], data)
    assert refused.returncode == 1 and "1 to 30 whole days" in refused.stderr and "Traceback" not in refused.stderr
    assert cli(["share"], data).returncode == 1


def test_share_for_review_shares_the_campaign_shown_before_the_one_picked(made: SimpleNamespace) -> None:
    """The tab's "Share for review" under a campaign: the campaign on the sheet, though another is picked in the list
    meanwhile; the picked one only while none is shown (the rule of the feedback beside it)."""
    studio, tea = made.studio, made.studio.campaign_assets(folder="teas")[0][0]
    plan = studio.plan_campaign("{name}, autumn", ids=[tea.id], name="Autumn", user="alice")
    autumn = studio.run_campaign(studio.start_campaign(plan).id, user="alice")  # one fake image
    with gr.Blocks() as demo:
        p, cid, pick = review_ui.render_campaign(studio), gr.State(""), gr.State("")
        review_ui.listen_campaign(studio, p, cid, pick, gr.Button(), (lambda: None, None, None))
    (make,) = [f for f in demo.fns.values() if (p.make._id, "click") in f.targets]  # the button's own wiring

    def shared(shown: str, chosen: str) -> str:
        given = {cid._id: shown, pick._id: chosen}
        url = make.fn(*(given.get(c._id, c.value) for c in make.inputs), gr.Request(username="alice"))[0].value
        return studio.reviews.link(url, user="alice").source_id

    assert shared(made.campaign.id, autumn.id) == made.campaign.id
    assert shared("", autumn.id) == autumn.id


def test_the_review_page_answers_strangers_and_nothing_else_does(made: SimpleNamespace) -> None:
    studio, cid = made.studio, made.campaign.id
    with running_app(studio) as url, httpx.Client(base_url=url, timeout=30) as web:
        owner = Client(url, auth=("alice", "wonder-1"), verbose=False)
        made_link = owner.predict(cid, "", [], 7, "", True, False, True, api_name="/share_for_review")
        token = made_link["token"]
        assert made_link["url"].startswith(url.rstrip("/")) and made_link["watermark"] is True
        page = web.get(f"/review/{token}")
        assert page.status_code == 200 and "Tea launch" in page.text and "<script" not in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert page.text.count(f'src="/review/{token}/img/') == 3
        picture = web.get(f"/review/{token}/img/1")
        unmarked = studio.reviews.image(studio.reviews.door(studio.reviews.share(campaign=cid).token), 1)
        assert picture.headers["content-type"] == "image/webp" and picture.content != unmarked.read_bytes()
        assert Image.open(io.BytesIO(picture.content)).size == Image.open(unmarked).size  # the preview, watermarked
        posted = web.post(f"/review/{token}/notes", data={"reviewer": PAYLOAD, "act": "2:comment", "comment-2": PAYLOAD})
        assert posted.status_code == 303 and posted.headers["location"] == f"/review/{token}#item-2"
        shown = web.get(f"/review/{token}").text
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in shown and "<script>window" not in shown
        assert "<img src=x" not in shown
        for path in (f"/review/{token}/img/4", f"/review/{token}/file/1", f"/review/{token}/img/..%2F..%2Fconfig"):
            assert web.get(path).status_code == 404, path  # not shared; no downloads here; no way out
        preview = studio.preview(studio.campaign_assets(folder="teas")[0][0])
        for path in (f"/gradio_api/file={preview}", "/config", "/gradio_api/info"):
            assert web.get(path).status_code in (401, 403), path  # Gradio's routes still want sign-in
        assert web.post("/gradio_api/call/generate", json={"data": ["x"]}).status_code in (401, 403)
        _failures_read_alike(studio, web, cid)


def _failures_read_alike(studio: Studio, web: httpx.Client, cid: str) -> None:
    """Unknown, revoked, expired and a wrong password: the same page; then the address waits."""
    locked = studio.reviews.share(campaign=cid, password="open-sesame", downloads=True, user="alice")
    asked = web.get(f"/review/{locked.token}")
    assert asked.status_code == 200 and "needs a password" in asked.text
    assert web.get(f"/review/{locked.token}/img/1").status_code == 404  # no pass, no picture
    entered = web.post(f"/review/{locked.token}/enter", data={"password": "open-sesame"})
    assert entered.status_code == 303 and "review_pass" in entered.headers["set-cookie"]
    passed = {"review_pass": entered.cookies["review_pass"]}
    original = web.get(f"/review/{locked.token}/file/1", cookies=passed)
    assert original.status_code == 200 and "attachment" in original.headers["content-disposition"]
    revoked, expired = (studio.reviews.share(campaign=cid, user="alice") for _ in range(2))
    studio.reviews.revoke(revoked.link.id)
    _expire(studio, expired.link.id)
    bodies = {web.get(f"/review/{t}").text for t in ("A" * 43, revoked.token, expired.token)}
    bodies.add(web.post(f"/review/{locked.token}/enter", data={"password": "wrong-one"}).text)
    assert len(bodies) == 1 and NOT_VALID.split(".")[0] in bodies.pop()
    assert web.get("/review/nothing/here").status_code == 404  # the fifth failure since the right password
    refused = web.get(f"/review/{locked.token}", cookies=passed)
    assert refused.status_code == 429 and "Too many tries" in refused.text
