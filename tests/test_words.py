"""Word search on Milvus Lite: the text field (file names, tags, XMP, IPTC, PNG text, prompts) scored
by Milvus' BM25 and fused with CLIP by ``hybrid_search``; the query syntax; the cut-off; reindex.

The CLIP model has random weights here, so pictures tell nothing: whatever ranks an image first by
its words, it is the BM25 side doing it.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from rag.clip import ClipEmbedder
from rag.core import BananaError
from rag.search import Query
from rag.search.rank import CUES, FULL_MATCH_SIGMAS, rank, relevance_cue
from rag.store import Candidates
from rag.store.milvus import MODEL_PROPERTY
from rag.store.schema import create_collection
from rag.store.words import parse_words, words
from rag.studio import Studio
from tests.conftest import test_settings

XMP = """<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title><rdf:Alt>
<rdf:li xml:lang="x-default">{}</rdf:li></rdf:Alt></dc:title></rdf:Description></rdf:RDF></x:xmpmeta>"""


def picture(seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
    return Image.fromarray(pixels).resize((64, 48), Image.Resampling.NEAREST)


def png_with_text(path: Path, seed: int, text: str) -> Path:
    info = PngInfo()
    info.add_text("Description", text)
    picture(seed).save(path, pnginfo=info)
    return path


def jpeg_with_xmp(path: Path, seed: int, text: str) -> Path:
    picture(seed).save(path, "JPEG", xmp=XMP.format(text).encode())
    return path


def jpeg_with_iptc(path: Path, seed: int, keywords: list[str]) -> Path:
    """A JPEG with IPTC keywords in a Photoshop APP13 block, as Bridge and Lightroom write them."""
    buf = io.BytesIO()
    picture(seed).save(buf, "JPEG")
    records = b"".join(b"\x1c\x02\x19" + struct.pack(">H", len(k)) + k.encode() for k in keywords)
    block = b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(records)) + records + b"\x00" * (len(records) % 2)
    payload = b"Photoshop 3.0\x00" + block
    data = buf.getvalue()
    path.write_bytes(data[:2] + b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload + data[2:])
    return path


def distractors(folder: Path, n: int = 8, start: int = 100) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        picture(start + i).save(folder / f"img_{i:02d}.png")


def ids(hits: list) -> list[str]:
    return [h.asset.filename for h in hits]


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, embedder: ClipEmbedder) -> Studio:
    """A small library: plain pictures, and pictures whose words are in their files or tags."""
    root = tmp_path_factory.mktemp("words")
    distractors(root / "plain")
    distractors(root / "other", start=200)
    words_dir = root / "brand"
    words_dir.mkdir()
    png_with_text(words_dir / "p1.png", 1, "Acme spring campaign")
    jpeg_with_xmp(words_dir / "x1.jpg", 2, "Acme spring campaign")
    jpeg_with_iptc(words_dir / "i1.jpg", 3, ["Acme", "spring", "campaign"])
    png_with_text(words_dir / "horses.png", 4, "Running horses at dawn")
    png_with_text(root / "other" / "acme_logo.png", 5, "")
    s = Studio(test_settings(root / "data"), embedder=embedder)
    report = s.ingest_folder(root)
    assert len(report.added) == 21 and not report.failed
    reds = [a.id for a in report.added if a.filename in ("img_01.png", "img_03.png", "img_05.png") and a.folder == "plain"]
    s.add_tags(reds, ["red"])
    yield s
    s.close()


def test_words_are_stemmed_and_file_names_split() -> None:
    assert words("RedBird_02 campaigns") == ["red", "bird", "02", "campaign"]
    q = parse_words('acme "Spring campaigns" -red')
    assert q.clip_text == "acme Spring campaigns" and q.negatives == ("red",)
    assert q.phrases == (("spring", "campaign"),)
    assert q.filter() == 'text like "% spring campaign %" and not (text like "% red %")'


def test_embedded_words_are_read_from_png_xmp_and_iptc(tmp_path: Path) -> None:
    from rag.media import decode, file_text

    png = png_with_text(tmp_path / "a.png", 1, "Acme  spring\ncampaign")
    assert file_text(png) == decode(png).text == "Acme spring campaign"
    assert file_text(jpeg_with_xmp(tmp_path / "x.jpg", 2, "Acme &amp; Co")) == "Acme & Co"
    assert file_text(jpeg_with_iptc(tmp_path / "i.jpg", 3, ["Acme", "spring"])) == "Acme spring"
    picture(4).save(tmp_path / "plain.png")
    assert file_text(tmp_path / "plain.png") == "" and file_text(tmp_path / "gone.png") == ""


@pytest.mark.parametrize("name", ["p1.png", "x1.jpg", "i1.jpg"])
def test_embedded_words_find_an_unrelated_picture_first(library: Studio, name: str) -> None:
    """PNG text, an XMP title and IPTC keywords each say "Acme spring campaign"."""
    found = library.search("acme campaign", k=6)
    assert name in ids(found)[:4] and all(h.words for h in found[:4])  # the three, and acme_logo.png
    assert not any(h.words for h in found[4:])


def test_a_stemmed_word_matches(library: Studio) -> None:
    hits = library.search("horse runs", k=3)
    assert hits[0].asset.filename == "horses.png" and hits[0].words


def test_file_names_are_words(library: Studio) -> None:
    hits = library.search("logo", k=3)
    assert hits[0].asset.filename == "acme_logo.png" and hits[0].words


def test_words_off_is_clip_alone(library: Studio) -> None:
    on = library.search("acme campaign", k=21)
    off = library.search("acme campaign", k=21, words=False)
    plain = library.store.search(library.embedder.embed_texts(["acme campaign"])[0], 21)
    assert ids(off) == ids(plain) and not any(h.words for h in off)
    assert ids(on)[:4] != ids(off)[:4]


def test_no_matching_word_gives_clip_alone(library: Studio) -> None:
    hits = library.search("zebra", k=21)
    plain = library.store.search(library.embedder.embed_texts(["zebra"])[0], 21)
    assert ids(hits) == ids(plain) and not any(h.words for h in hits)


def test_minus_word_ranks_tagged_images_lower(library: Studio) -> None:
    before = ids(library.search("red picture", k=21))
    after = library.search("picture -red", k=21)
    reds = {"img_01.png", "img_03.png", "img_05.png"}
    assert reds <= set(before[:3])  # the tag made them match first
    assert not reds & {h.asset.filename for h in after if h.asset.folder == "plain"}
    assert len(after) == 18


def test_exact_phrase_must_appear(library: Studio) -> None:
    hits = library.search('"spring campaign"', k=21)
    assert sorted(ids(hits)) == ["i1.jpg", "p1.png", "x1.jpg"]
    assert library.search('"campaign spring"', k=21) == []


def test_filters_apply_to_both_sides(library: Studio) -> None:
    elsewhere = library.search("acme campaign", k=21, folders=["plain"])
    assert elsewhere and {h.asset.folder for h in elsewhere} == {"plain"} and not any(h.words for h in elsewhere)
    tagged = library.search("acme", k=21, tags=["red"])
    assert {h.asset.filename for h in tagged} == {"img_01.png", "img_03.png", "img_05.png"}


def test_min_score_cuts_results_and_says_how_many(library: Studio) -> None:
    probe = library.search("logo", k=1)[0].asset.id
    everything = library.search(image_id=probe, k=10)
    relevance = [h.relevance for h in everything]
    cut = next(r for r in relevance if 0 < r < relevance[0])
    kept = sum(r >= cut for r in relevance)
    found = library.search_results(image_id=probe, k=10, min_score=cut)
    assert ids(found.hits) == ids(everything)[:kept] and found.below_cutoff == 10 - kept
    assert f"{10 - kept} result{'' if 10 - kept == 1 else 's'} hidden by the cut-off" in found.summary()
    assert library.search_results("acme", k=5).below_cutoff == 0


def test_one_relevance_orders_labels_and_cuts(library: Studio) -> None:
    """Issue 26.7: the order, the caption's label and the cut-off read one score, relevance; word matches
    ranked first no longer read "loose match" above a "best match"; ``score`` stays the cosine."""
    found = library.search("acme campaign", k=12)
    relevance = [h.relevance for h in found]
    assert relevance == sorted(relevance, reverse=True) and relevance[0] == 1.0
    cues = [relevance_cue(r) for r in relevance]
    order = [cue for _, cue in CUES]
    assert [order.index(c) for c in cues] == sorted(order.index(c) for c in cues)  # labels never rise down the list
    assert cues[0] == "best match" and {h.match for h in found[:3]} <= {"words", "words and picture"}
    assert {h.match for h in found if not h.words} == {"picture"}
    vec = library.embedder.embed_texts(["acme campaign"])[0]
    vectors = library.store.vectors([h.asset.id for h in found])
    assert all(abs(h.score - float(vectors[h.asset.id] @ vec)) < 1e-4 for h in found)  # still the cosine
    assert {"score", "relevance", "match", "words"} <= found[0].to_dict().keys()  # what /search and --json carry


def test_the_cut_off_means_the_same_for_any_model() -> None:
    """Issue 26.8: relevance is calibrated on the library's own scores, so a model whose cosines sit at
    0.2-0.35 and one at 0.7-0.95 read the same; half of FULL_MATCH_SIGMAS above typical is "related"."""
    def found(scale: float, shift: float) -> Candidates:
        sigma, typical = 0.015, 0.22
        cos = {"a": 0.34, "b": 0.31, "c": typical + FULL_MATCH_SIGMAS * sigma, "d": typical + FULL_MATCH_SIGMAS * sigma / 2,
               "e": typical}
        cos = {i: shift + scale * c for i, c in cos.items()}
        return Candidates(pictures=list(cos.items()), cosines=cos, typical=shift + scale * typical, spread=scale * sigma,
                          words={"e": (3.2, 1.0)})

    clip_like, other = rank(found(1.0, 0.0)), rank(found(2.5, 0.15))
    assert [(r.id, r.relevance, r.match) for r in clip_like] == [(r.id, r.relevance, r.match) for r in other]
    by_id = {r.id: r for r in clip_like}
    assert by_id["d"].relevance == 0.5 and relevance_cue(by_id["c"].relevance) == "best match"
    assert by_id["e"].relevance == 1.0 and by_id["e"].match == "words"  # a typical picture, every word
    assert [r.id for r in clip_like] == ["e", "a", "b", "c", "d"]  # ties: more of both, then BM25, then cosine
    bare = rank(Candidates(pictures=[("a", 0.3), ("b", 0.2)], cosines={"a": 0.3, "b": 0.2}))
    assert [(r.id, r.relevance) for r in bare] == [("a", 1.0), ("b", 0.0)]  # no figures yet: best to weakest


def test_the_cut_off_keeps_exact_word_matches(library: Studio) -> None:
    """Issue 26.8: "acme" at any cut-off still finds every image that holds the word (all the query's words:
    relevance 1); turning words off asks for the cut to apply to pictures alone."""
    holders = {h.asset.id for h in library.search("acme", k=21) if h.words}
    assert len(holders) == 4
    for cut in (0.5, 0.75, 0.9, 1.0):
        found = library.search_results("acme", k=21, min_score=cut)
        assert holders <= {h.asset.id for h in found.hits}
        assert all(h.relevance >= cut for h in found.hits) and found.below_cutoff == 21 - len(found.hits)
    pictures = library.search_results("acme", k=21, min_score=0.5, words=False)
    assert all(h.relevance >= 0.5 and not h.words for h in pictures.hits)
    assert pictures.below_cutoff == 21 - len(pictures.hits) > 0 and "hidden by the cut-off" in pictures.summary()


def test_tag_edits_and_moves_keep_words_current(studio: Studio, tmp_path: Path) -> None:
    distractors(tmp_path / "in")
    report = studio.ingest_folder(tmp_path / "in")
    target = report.added[4]
    studio.set_tags(target.id, ["Zanzibar"])
    assert studio.search("zanzibar", k=3)[0].asset.id == target.id
    studio.move([report.added[2].id], "hats/fedora")
    assert studio.search("fedora", k=3)[0].asset.id == report.added[2].id
    studio.delete([target.id])
    assert not any(h.words for h in studio.search("zanzibar", k=8))
    studio.restore([target.id])  # from the Trash, with its tags
    assert studio.search("zanzibar", k=3)[0].asset.id == target.id
    studio.set_tags(target.id, [])
    assert not any(h.words for h in studio.search("zanzibar", k=8))


def test_words_survive_export_and_import(library: Studio, tmp_path: Path, embedder: ClipEmbedder) -> None:
    file = tmp_path / "lib.parquet"
    library.export(file)
    other = Studio(test_settings(tmp_path / "copy"), embedder=embedder)
    try:
        assert other.import_(file) == 21
        top = other.search("acme campaign", k=3)
        assert {h.asset.filename for h in top} == {"p1.png", "x1.jpg", "i1.jpg"}
        assert other.search("red", k=3)[0].asset.filename in {"img_01.png", "img_03.png", "img_05.png"}
    finally:
        other.close()


def test_stats_say_word_search_is_on(library: Studio) -> None:
    stats = library.stats()
    assert stats["word_search"] is True and stats["words_notice"] == ""


def old_library(tmp_path: Path, embedder: ClipEmbedder) -> Studio:
    """A library made before word search: its collection has no text field."""
    settings = test_settings(tmp_path / "data")
    from pymilvus import MilvusClient

    Path(settings.milvus_uri).parent.mkdir(parents=True, exist_ok=True)
    client = MilvusClient(uri=settings.milvus_uri)
    create_collection(client, settings.collection, embedder.dim, "FLAT", False, {MODEL_PROPERTY: embedder.name},
                      full_text=False)
    client.close()
    studio = Studio(settings, embedder=embedder)
    root = tmp_path / "images"
    distractors(root)
    png_with_text(root / "brand.png", 9, "Acme spring campaign")
    assert len(studio.ingest_folder(root).added) == 9
    return studio


def test_an_old_library_says_reindex_then_reindex_enables_words(tmp_path: Path, embedder: ClipEmbedder) -> None:
    studio = old_library(tmp_path, embedder)
    try:
        assert "re-index to enable word search" in studio.words_notice()
        from ui.search import words_notice_md  # what the Search tab shows on each page load

        assert "re\\-index to enable word search" in words_notice_md(studio)
        found = studio.search_results("acme campaign", k=9)
        assert len(found.hits) == 9 and not any(h.words for h in found.hits)
        assert "reindex" in found.notice
        before = studio.store.vectors([h.asset.id for h in found.hits])
        report = studio.reindex()
        assert report.copied == 9 and report.word_search and not report.embedded
        assert studio.words_notice() == "" and words_notice_md(studio) == ""
        top = studio.search("acme campaign", k=3)[0]
        assert top.asset.filename == "brand.png" and top.words
        after = studio.store.vectors(list(before))
        assert all(np.array_equal(before[i], after[i]) for i in before)  # copied, not re-embedded
        assert studio.count() == 9 and studio.settings.collection in studio.store.client.list_collections()
        assert len(studio.store.client.list_collections()) == 1
    finally:
        studio.close()


def test_a_new_model_is_refused_for_ingest_then_reindex_re_embeds(tmp_path: Path, embedder: ClipEmbedder) -> None:
    studio = old_library(tmp_path, embedder)
    studio.close()
    renamed = Studio(studio.settings, embedder=_Renamed(embedder))
    try:
        with pytest.raises(BananaError, match="reindex"):
            renamed.ingest_files([tmp_path / "images" / "brand.png"])
        gone = tmp_path / "images" / "img_00.png"
        kept = gone.read_bytes()
        gone.unlink()
        with pytest.raises(BananaError, match="1 files could not be read.*img_00.png.*--drop-missing"):
            renamed.reindex()
        assert renamed.count() == 9 and renamed.store.model == embedder.name  # unchanged
        gone.write_bytes(kept)
        report = renamed.reindex()
        assert report.embedded == 9 and not report.copied
        assert renamed.store.model == "other/model" and renamed.count() == 9
        assert renamed.search("acme campaign", k=1)[0].asset.filename == "brand.png"
    finally:
        renamed.close()


class _Renamed:
    """The same network under another name: what changing CLIP_PRETRAINED looks like to the store."""

    def __init__(self, inner: ClipEmbedder) -> None:
        self._inner = inner

    name = "other/model"

    def __getattr__(self, attr: str):
        return getattr(self._inner, attr)


def test_query_carries_the_word_options() -> None:
    q = Query.of({"text": "x", "words": False, "min_score": "0.25"})
    assert (q.words, q.min_score) == (False, 0.25)
    assert Query().words is True and Query().min_score == 0.0


def test_a_swap_interrupted_after_the_first_rename_is_finished_on_open(tmp_path: Path, embedder: ClipEmbedder) -> None:
    """reindex renames the old collection aside, then the new one in: a crash between the two
    leaves no collection under the library's name; the next open completes the swap."""
    studio = old_library(tmp_path, embedder)
    name = studio.settings.collection
    store = studio.store
    rebuilt = store.sibling(name + "__rebuild")
    assets = studio.get([h.asset.id for h in studio.search("x", k=9, words=False)])
    vectors = store.vectors([a.id for a in assets])
    rebuilt.upsert(assets, np.stack([vectors[a.id] for a in assets]))
    rebuilt.mark_complete()
    store.client.release_collection(name)
    store.client.rename_collection(name, name + "__old")  # the crash comes here
    studio.close()
    again = Studio(studio.settings, embedder=embedder)
    try:
        assert again.store.client.list_collections() == [name]
        assert again.count() == 9 and again.words_notice() == ""
        assert again.search("acme campaign", k=1)[0].asset.filename == "brand.png"
    finally:
        again.close()
