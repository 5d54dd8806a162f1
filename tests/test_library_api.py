"""The library's API through gradio_client against the app on loopback: /library_page, /asset
(parents and children of a generated image), /tag (tags come back from /search), /move, /restore."""

from __future__ import annotations

from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from rag.studio import Studio
from tests.appserver import running_app
from tests.conftest import SAMPLE, test_settings
from tests.fake_gemini import FakeGemini, image_reply, png_bytes


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, embedder):
    fake = FakeGemini()
    fake.start()
    settings = test_settings(tmp_path_factory.mktemp("api"), gemini_api_key="api-key-lib", gemini_base_url=fake.base_url,
                             gemini_retries=0)
    studio = Studio(settings, embedder=embedder)
    try:
        with running_app(studio) as url:
            yield studio, Client(url, verbose=False), fake
    finally:
        fake.stop()
        studio.close()


def test_generated_image_lists_its_parents_and_each_parent_its_child(served) -> None:
    studio, client, fake = served
    files = sorted((SAMPLE / "food").iterdir())[:3]
    summary, *_ = client.predict([handle_file(str(p)) for p in files], "menu", "launch, food", api_name="/ingest")
    assert summary.startswith("**3 added")
    page = client.predict(["menu"], None, "", None, ["launch"], 0, 60, api_name="/library_page")
    assert page["total"] == 3 and page["facets"]["tags"] == {"food": 3, "launch": 3}
    assert all(a["tags"] == ["launch", "food"] and a["folder"] == "menu" for a in page["assets"])
    parents = [page["assets"][0]["id"], page["assets"][2]["id"]]

    fake.push(image_reply(png_bytes((32, 32), (250, 210, 10))))
    generated = client.predict("both dishes on one plate", parents, "1:1", 1, api_name="/generate")
    (child_id,) = client.predict(generated["images"], api_name="/save_generated")

    child = client.predict(child_id, api_name="/asset")
    assert child["parents"] == parents and [a["id"] for a in child["parent_assets"]] == parents
    assert child["generation"]["prompt"] == "both dishes on one plate" and child["generation"]["model"]
    assert child["asset"]["source"] == "generated" and "source_path" in child["asset"]
    for parent in parents:
        assert client.predict(parent, api_name="/asset")["children"] == [child_id]
    assert client.predict(page["assets"][1]["id"], api_name="/asset")["children"] == []
    newest = client.predict(None, None, "", None, None, 0, 1, api_name="/library_page")
    assert newest["assets"][0]["id"] == child_id and newest["more"] and newest["facets"]["model"]


def test_tags_set_through_the_api_come_back_from_search(served) -> None:
    studio, client, _ = served
    asset_id = client.predict(["menu"], None, "", None, None, 0, 1, api_name="/library_page")["assets"][0]["id"]
    assert client.predict(asset_id, ["hero", "Blue sky", "hero"], False, api_name="/tag") == ["hero", "Blue sky"]
    assert client.predict(asset_id, ["extra"], True, api_name="/tag") == ["hero", "Blue sky", "extra"]
    hits = client.predict("a plate of food", 20, [], [], api_name="/search")
    tagged = [h for h in hits if h["id"] == asset_id]
    assert tagged and tagged[0]["tags"] == ["hero", "Blue sky", "extra"]
    only = client.predict(text="anything", k=20, tags=["Blue sky"], api_name="/search")
    assert [h["id"] for h in only] == [asset_id]
    with pytest.raises(Exception, match="at most 40 printable characters"):
        client.predict(asset_id, ["x" * 50], False, api_name="/tag")


def test_move_refuses_unsafe_names_and_delete_restores(served) -> None:
    studio, client, _ = served
    asset_id = client.predict(["menu"], None, "", None, None, 0, 1, api_name="/library_page")["assets"][0]["id"]
    path = Path(studio.get([asset_id])[0].path)
    for bad, words in (("../../outside", '"." or ".."'), ("x" * 300, "at most 120 characters")):
        with pytest.raises(Exception, match=words):
            client.predict([asset_id], bad, api_name="/move")
    assert not (studio.settings.library_dir.parent.parent / "outside").exists()
    assert client.predict([asset_id], "menu/specials", api_name="/move") == 1
    assert client.predict(["menu/specials"], None, "", None, None, 0, 60, api_name="/library_page")["total"] == 1
    assert path.is_file() and studio.get([asset_id])[0].path == str(path)
    assert client.predict([asset_id], api_name="/delete") == 1 and not path.exists()
    restored = client.predict([asset_id], api_name="/restore")
    assert restored == {"restored": [asset_id], "problems": []} and path.is_file()
    back = client.predict(asset_id, api_name="/asset")["asset"]
    assert back["folder"] == "menu/specials" and back["tags"] == ["hero", "Blue sky", "extra"]
