"""Speed work that must not change answers (issue 32): filtered searches answered from Lite's copy in
memory (rag/store/lite_fields.py) give Lite's own ids; camera-size JPEGs decoded at a fraction of
their size still embed as open_clip embeds them."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageChops

from rag.clip import ClipEmbedder
from rag.core import Asset, StoreError
from rag.library.writes import BatchedWrites
from rag.media import decode
from rag.store import MilvusStore, build_filter, joined, parse_words
from rag.store.filters import Filter
from rag.studio import Studio
from tests.conftest import SAMPLE, test_settings

DIM = 16
WORDS = ["red", "car", "gold", "cape", "spring", "campaign", "tea", "cup", "the", "running"]
FOLDERS = ["spring", "spring/food", "spring/food/hot", "springtime", "spring launch", "autumn", "autumn/x", ""]
SOURCES = ["folder", "upload", "generated"]
TAGS = ["hero", "logo", "draft", "campaign:Spring", "x y"]
MODELS = ["gemini-3-pro-image", "gemini-3.1-flash-image"]


def _asset(i: int, rng: random.Random) -> Asset:
    meta: dict = {"tags": rng.sample(TAGS, rng.randint(0, 2)), "embedded": " ".join(rng.choices(WORDS, k=rng.randint(0, 5)))}
    if rng.random() < 0.4:
        meta["model"] = rng.choice(MODELS)
    return Asset(id=f"{i:064x}", path=f"/lib/p{i}.png", filename=f"p{i}.png", folder=rng.choice(FOLDERS), width=10,
                 height=10, format="PNG", bytes=100, created=1000.0 + rng.randint(0, 100), source=rng.choice(SOURCES),
                 meta=meta)


def _filter(rng: random.Random) -> Filter:
    """A random mix of what a search or the library grid filters on; each kind at random."""
    def pick(pool: list[str]) -> list[str] | None:
        return rng.sample(pool, rng.randint(1, 2)) if rng.random() < 0.45 else None

    after = 1000.0 + rng.randint(0, 100) if rng.random() < 0.3 else None
    before = 1000.0 + rng.randint(0, 100) if rng.random() < 0.3 else None
    fields = build_filter(pick(FOLDERS[:-1]), pick(SOURCES), tags=pick(TAGS), models=pick(MODELS),
                          added_after=after, added_before=before)
    text = " ".join([f'"{" ".join(rng.choices(WORDS, k=rng.randint(1, 2)))}"' if rng.random() < 0.4 else "",
                     f"-{rng.choice(WORDS)}" if rng.random() < 0.4 else "", rng.choice(WORDS)])
    found = joined(fields, parse_words(text).filter())
    assert isinstance(found, Filter)
    return found if found else _filter(rng)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> MilvusStore:
    """A few hundred records with random vectors, written straight into Lite, its copy in memory read."""
    rng, vectors = random.Random(32), np.random.default_rng(32).standard_normal((400, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    s = MilvusStore(test_settings(tmp_path_factory.mktemp("speed")), DIM)
    s.upsert([_asset(i, rng) for i in range(300)], vectors[:300])
    s.flush()
    s.warm_up()
    s.upsert([_asset(i, rng) for i in range(300, 400)], vectors[300:])  # written once the copy was whole
    s.upsert([_asset(i, rng) for i in range(0, 40)], vectors[:40])  # re-tagged, moved, dated again
    s.delete([f"{i:064x}" for i in range(40, 80)])
    yield s
    s.close()


def test_filtered_searches_in_memory_give_lite_own_ids(store: MilvusStore) -> None:
    rng, qs = random.Random(7), np.random.default_rng(7).standard_normal((30, DIM)).astype(np.float32)
    assert store.memory.ready() is not None
    nonempty = 0
    for q in qs:
        where = _filter(rng)
        text = " ".join(rng.sample(WORDS, 2))
        ours = store.memory.search(q, 20, 0.0, where)  # None would mean: not answered from memory
        lite = store.search(q, 20, str(where))  # a plain string: Lite's own filtered search
        assert ours is not None and [h.asset.id for h in ours] == [h.asset.id for h in lite], where
        nonempty += bool(lite)
        # every record the filter keeps, so that the word side compares the records kept, not a top-k of BM25
        # scores, which Lite counts per segment with deleted rows (rag/store/lite_words.py)
        both = store.memory.candidates(q, 400, text, where)
        theirs = store.candidates(q, 400, str(where), text)
        assert both is not None and [i for i, _ in both.pictures] == [i for i, _ in theirs.pictures], where
        assert both.words.keys() == theirs.words.keys(), where
        assert {i: s for i, (_, s) in both.words.items()} == {i: s for i, (_, s) in theirs.words.items()}
        assert store.search(q, 20, where) == ours  # what the store itself answers with the app's filter
    assert nonempty >= 15  # the filters kept something often enough for the comparison to mean it


def test_filters_the_copy_cannot_apply_go_to_lite(store: MilvusStore) -> None:
    q = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
    assert store.memory.search(q, 5, 0.0, 'source == "folder"') is None  # a hand-written expression
    assert store.memory.search(q, 5, 0.0, build_filter(["spring"]) + " and width > 1") is None  # a changed one
    assert store.memory.search(q, 5, 0.0, Filter('source == "folder"')) is None  # an expression with no clauses
    assert [h.asset.id for h in store.memory.search(q, 400, 0.0, Filter())] == [h.asset.id for h in store.search(q, 400)]
    subfolders = {h.asset.folder for h in store.memory.search(q, 400, 0.0, build_filter(["spring"]))}
    assert subfolders == {"spring", "spring/food", "spring/food/hot"}  # not "springtime", not "spring launch"


def _jpeg(size: tuple[int, int], orientation: int = 1, mode: str = "RGB") -> bytes:
    """A photo-like JPEG: a colour gradient, soft blotches and a drawing from the sample library."""
    w, h = size
    photo = Image.merge("RGB", [Image.linear_gradient("L").rotate(a).resize(size) for a in (0, 90, 45)])
    noise = np.random.default_rng(w).integers(96, 160, (h // 16 + 1, w // 16 + 1), dtype=np.uint8)
    blotches = Image.fromarray(noise).resize(size, Image.Resampling.BICUBIC)
    photo = ImageChops.add(photo, Image.merge("RGB", [blotches] * 3), offset=-128)
    drawing = Image.open(SAMPLE / "animals/beagle_copper_ganson.png").convert("RGBA")
    drawing = drawing.resize((w // 2, w // 2 * drawing.height // drawing.width))
    photo.paste(drawing, (w // 4, h // 8), drawing)
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    photo.convert(mode).save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


@pytest.fixture
def on_device(embedder: ClipEmbedder, monkeypatch: pytest.MonkeyPatch) -> ClipEmbedder:
    """The session's model, deciding JPEGs as a GPU does (JPEG_DECODER=torchvision), on the CPU."""
    monkeypatch.setattr(embedder, "settings", embedder.settings.with_(jpeg_decoder="torchvision"))
    assert embedder.jpeg_on_device and embedder.visual.jpeg_decoder() is not None
    return embedder


def test_a_large_jpeg_embeds_as_open_clip_embeds_its_full_decode(on_device: ClipEmbedder) -> None:
    """Decoded at 1/8 scale by Pillow (Image.draft), or whole by torchvision and resized on the model's device,
    a 12 MP photo gives open_clip's input for its full decode within a level of a pixel on average (the 1/4
    decode shrunk to 512 that ingest used before was 1.4 off), and its vector."""
    data = _jpeg((4000, 3000))
    visual = on_device.visual
    full = Image.open(io.BytesIO(data)).convert("RGB")
    reference = visual.prepare(full)  # open_clip's resize and crop of the full picture
    drafted = decode(data)
    assert drafted.image.size == (500, 375) and (drafted.width, drafted.height) == (4000, 3000)  # 1/8 of it
    pillow = visual.prepare(drafted.image)
    header, batched = on_device.prepare_file(data)
    assert (header.width, header.height, header.format) == (4000, 3000, "JPEG")
    for ours, mean in ((pillow, 1.0), (batched, 0.25)):
        diff = (ours.to(torch.int16) - reference.to(torch.int16)).abs().float()
        assert ours.shape == reference.shape and diff.mean() < mean and diff.max() <= 32, float(diff.mean())
    vectors = on_device.encode_prepared([reference, pillow, batched])
    assert (1 - vectors[1:] @ vectors[0]).max() < 1e-3  # the bf16 tolerance of tests/test_embedder.py


def test_ingest_decodes_jpegs_in_batches_on_the_model_device(tmp_path: Path, on_device: ClipEmbedder) -> None:
    """An ingest through the batched decoder: upright facts for a turned photo, Pillow for what it will not
    decode (CMYK, a file cut short), and the vectors the Pillow path gives."""
    files = {"big.jpg": _jpeg((1600, 1200)), "turned.jpg": _jpeg((300, 200), orientation=6),
             "cmyk.jpg": _jpeg((240, 160), mode="CMYK")}
    files["cut.jpg"] = files["big.jpg"][: len(files["big.jpg"]) // 3]
    for name, data in files.items():
        (tmp_path / "in" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "in" / name).write_bytes(data)
    decoder = on_device.visual.jpeg_decoder()
    before = decoder.decoded
    studio = Studio(test_settings(tmp_path / "data"), embedder=on_device)
    try:
        report = studio.ingest_folder(tmp_path / "in")
        assert sorted(a.filename for a in report.added) == ["big.jpg", "cmyk.jpg", "turned.jpg"]
        assert [(Path(p).name, "truncated" in why) for p, why in report.failed] == [("cut.jpg", True)]
        assert decoder.decoded - before == 2  # big and turned; CMYK went to Pillow
        by_name = {a.filename: a for a in report.added}
        assert (by_name["turned.jpg"].width, by_name["turned.jpg"].height) == (200, 300)
        turned = on_device.prepare_file(files["turned.jpg"])[1].to(torch.int16)  # upright, as Pillow turns it
        assert (turned - on_device.prepare(decode(files["turned.jpg"]).image).to(torch.int16)).abs().float().mean() < 1
        stored = studio.store.vectors([a.id for a in report.added])
        for name in ("big.jpg", "turned.jpg", "cmyk.jpg"):
            pillow = on_device.encode_prepared([on_device.prepare(decode(files[name]).image)])[0]
            assert 1 - float(stored[by_name[name].id] @ pillow) < 1e-3, name
    finally:
        studio.close()


def test_writes_gather_into_large_ones_in_order_and_failures_surface(tmp_path: Path) -> None:
    store = MilvusStore(test_settings(tmp_path), DIM)
    rng = random.Random(3)
    seen: list[list[str]] = []
    writes = BatchedWrites(store, lambda assets: seen.append([a.id for a in assets]), background=True, rows=4)
    vectors = np.eye(DIM, dtype=np.float32)
    for start in (0, 3, 6):
        writes.put([_asset(i, rng) for i in range(start, start + 3)], vectors[start:start + 3])
    writes.wait()
    assert [len(s) for s in seen] == [6, 3] and store.count() == 9  # two writes of at most 4 + what was left
    assert [i for s in seen for i in s] == [f"{i:064x}" for i in range(9)]
    store.close()
    failing = BatchedWrites(store, seen.append, background=True, rows=1)
    with pytest.raises(StoreError):
        failing.put([_asset(9, rng)], vectors[9:10])
        failing.wait()
