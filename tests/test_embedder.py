"""The embedder is CLIP: its vectors equal open_clip's own, applied by hand to the same model.

With random weights (CLIP_PRETRAINED=none) search results mean nothing, so nothing else would
notice if our preprocessing, batching or padding-free text path drifted from open_clip's. Here
one seeded random ViT-B-32 is built directly with open_clip, the embedder builds its own with
the same seed, and the weights are compared first: a seed mismatch fails there, loudly, instead
of as a puzzling cosine further down. The fp32 embedder must match open_clip exactly (1e-5); the
bf16 one (CLIP_PRECISION=bf16, the ``auto`` choice on CPUs with AMX) within 1e-3.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rag.clip import ClipEmbedder
from rag.clip.runtime import unit_rows
from rag.core import Settings
from rag.media.images import WORKING_SIZE, decode
from tests.conftest import SAMPLE

ARCH = "ViT-B-32"
FP32_GAP = 1e-5  # 1 - cosine allowed where the arithmetic is the same (fp32)
BF16_GAP = 1e-3  # 1 - cosine allowed for bf16 weights (the load-time probe keeps fp32 past 1 - 0.999)
TRANSPARENT = [  # alpha as RGBA, LA and a palette; the last three are over 512 px and get shrunk first
    "animals/beagle_copper_ganson.png",
    "animals/farfalla_contorno_archit_01.png",
    "animals/flamand_bw_jean-victor_b_01.png",
    "buildings/lighthouse_matthew_gates_.png",
    "geography/moon-half.png",
    "education/scissors_02.png",
]
OPAQUE_SMALL = "food/menu_example4.png"
OPAQUE_BIG = "office/picture_frame_jakob_chao_.png"
LONG = ", ".join(f"a {c} paper lantern number {i}" for i, c in enumerate(["red", "gold", "jade"] * 8))
TEXTS = ["a red silk cape with gold trim", "x", LONG, "café crème brûlée", "赤いマント", "🍌🍨 banana split 🎉"]


@pytest.fixture(scope="module")
def reference() -> tuple[torch.nn.Module, object, object]:
    """open_clip by hand: the model, its preprocessing and tokenizer, seeded as the embedder seeds."""
    import open_clip

    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(ARCH, pretrained=None)
    return model.eval(), preprocess, open_clip.get_tokenizer(ARCH)


def make_embedder(tmp: Path, reference: tuple, **changes: object) -> ClipEmbedder:
    """A loaded CPU embedder whose random model was checked to be the reference one."""
    env = {"CLIP_MODEL": ARCH, "CLIP_PRETRAINED": "none", "CLIP_DEVICE": "cpu", "BANANA_DATA_DIR": str(tmp),
           "EMBED_WORKERS": "2"}
    emb = ClipEmbedder(Settings.from_env(env).with_(**changes))
    assert emb.dim == 512 and not emb.loaded  # known without the weights: the store opens first
    ours, ref = emb.visual.model.visual.state_dict(), reference[0].visual.state_dict()
    different = [k for k in ref if not torch.equal(ours[k], ref[k].to(ours[k].dtype))]
    assert not different, f"the embedder built another random model than open_clip with seed 0: {different[:3]}"
    return emb


@pytest.fixture(scope="module")
def fp32(tmp_path_factory: pytest.TempPathFactory, reference: tuple) -> ClipEmbedder:
    return make_embedder(tmp_path_factory.mktemp("fp32"), reference, precision="fp32")


@pytest.fixture(scope="module")
def bf16(tmp_path_factory: pytest.TempPathFactory, reference: tuple) -> ClipEmbedder:
    return make_embedder(tmp_path_factory.mktemp("bf16"), reference, precision="bf16")


def gaps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``1 - cosine`` per row of two normalised matrices."""
    return 1.0 - np.sum(a * b, axis=1)


def reference_images(reference: tuple, images: list[Image.Image]) -> np.ndarray:
    model, preprocess, _ = reference
    with torch.inference_mode():
        return unit_rows(model.encode_image(torch.stack([preprocess(im) for im in images])))


def reference_texts(reference: tuple, texts: list[str]) -> np.ndarray:
    model, _, tokenizer = reference
    with torch.inference_mode():
        return unit_rows(model.encode_text(tokenizer(texts)))


def test_the_embedder_model_is_the_reference_model(fp32: ClipEmbedder, reference: tuple) -> None:
    ours, ref = fp32.text.model.state_dict(), reference[0].state_dict()
    assert ours.keys() == ref.keys()
    assert all(torch.equal(ours[k], ref[k]) for k in ref)  # the text tower too, not only the visual one
    assert fp32.loaded and fp32.visual.model is fp32.text.model  # one model, loaded once, two halves


def test_image_vectors_equal_open_clip_on_the_image_our_decoder_feeds_it(
    fp32: ClipEmbedder, reference: tuple
) -> None:
    paths = [SAMPLE / name for name in [*TRANSPARENT, OPAQUE_BIG]]
    s = fp32.settings
    decoded = [decode(p, background=s.background, max_pixels=s.max_image_pixels).image for p in paths]
    assert [max(im.size) for im in decoded[3:]] == [WORKING_SIZE] * 4  # the big ones were shrunk first
    ours = fp32.embed_images(paths)  # one batch, decoded by the worker pool, in order
    assert ours.shape == (len(paths), 512) and ours.dtype == np.float32
    assert gaps(ours, reference_images(reference, decoded)).max() <= FP32_GAP


def test_transparency_is_composited_on_the_configured_grey(fp32: ClipEmbedder, reference: tuple) -> None:
    """The comparison above is not vacuous: open_clip on the raw RGB channels gives another vector."""
    path = SAMPLE / TRANSPARENT[0]
    assert fp32.settings.background == (128, 128, 128)
    raw = Image.open(path)
    assert raw.mode == "RGBA" and raw.getextrema()[3][0] == 0  # some pixels are fully transparent
    grey = Image.new("RGBA", raw.size, (128, 128, 128, 255))
    grey.alpha_composite(raw)
    ours = fp32.embed_images([path])
    assert gaps(ours, reference_images(reference, [grey.convert("RGB")]))[0] <= FP32_GAP
    assert gaps(ours, reference_images(reference, [raw.convert("RGB")]))[0] > 1e-3


def test_small_opaque_image_equals_open_clip_on_the_raw_file(fp32: ClipEmbedder, reference: tuple) -> None:
    path = SAMPLE / OPAQUE_SMALL
    raw = Image.open(path)
    assert raw.mode == "RGB" and max(raw.size) <= WORKING_SIZE  # nothing for our decoder to change
    ours = fp32.embed_images([path.read_bytes()])
    assert gaps(ours, reference_images(reference, [raw.convert("RGB")]))[0] <= FP32_GAP


def test_text_vectors_equal_open_clip_encode_text(fp32: ClipEmbedder, reference: tuple) -> None:
    tokens = reference[2](TEXTS)
    assert bool((tokens[TEXTS.index(LONG)] != 0).all())  # the long query fills the 77-token context
    assert fp32.text.padding_free and fp32.precision == "fp32"  # the fast path is the one under test
    expected = reference_texts(reference, TEXTS)
    assert gaps(fp32.embed_texts(TEXTS), expected).max() <= FP32_GAP  # one batch of mixed lengths
    alone = np.concatenate([fp32.text.encode([t]) for t in TEXTS])  # each query cut to its own length
    assert gaps(alone, expected).max() <= FP32_GAP
    assert gaps(fp32.text.encode_reference(TEXTS), expected).max() <= FP32_GAP


def test_prepared_images_wait_as_uint8_and_are_normalised_per_batch(fp32: ClipEmbedder, reference: tuple) -> None:
    image = decode(SAMPLE / TRANSPARENT[0]).image
    prepared = fp32.prepare(image)
    assert fp32.visual.uint8_batches and prepared.dtype == torch.uint8 and prepared.shape == (3, 224, 224)
    assert torch.equal(fp32.visual.pixels([prepared])[0], reference[1](image))  # open_clip's input, bit for bit


def test_bf16_weights_stay_within_1e_3_of_open_clip_fp32(bf16: ClipEmbedder, reference: tuple) -> None:
    assert bf16.precision == "bf16" and bf16.text.padding_free
    model = bf16.text.model
    assert model.transformer.get_cast_dtype() == torch.bfloat16 and model.visual.conv1.weight.dtype == torch.bfloat16
    got = bf16.embed_texts(TEXTS)
    assert got.dtype == np.float32 and np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    deviation = gaps(got, reference_texts(reference, TEXTS))
    assert deviation.max() < BF16_GAP
    assert deviation.max() > 1e-7  # it really ran in bfloat16
    paths = [SAMPLE / name for name in [*TRANSPARENT, OPAQUE_SMALL, OPAQUE_BIG]]
    images = bf16.embed_images(paths)
    decoded = [decode(p).image for p in paths]
    deviation = gaps(images, reference_images(reference, decoded))
    assert deviation.max() < BF16_GAP and deviation.max() > 1e-7


def test_a_gpu_gets_big_batches_and_a_decode_thread_per_core(tmp_path: Path) -> None:
    """Decided without loading the model (so without a GPU here): CUDA_MIN_BATCH, and decode threads enough for
    every core or, when the GPU decodes the JPEGs (JPEG_DECODER=auto there), for big batches of them."""
    import os

    env = {"CLIP_PRETRAINED": "none", "BANANA_DATA_DIR": str(tmp_path), "EMBED_WORKERS": "1", "EMBED_BATCH_SIZE": "16"}
    gpu = ClipEmbedder(Settings.from_env({**env, "CLIP_DEVICE": "cuda"}))
    cpu = ClipEmbedder(Settings.from_env({**env, "CLIP_DEVICE": "cpu"}))
    assert (gpu.batch_size, gpu.workers, gpu.precision) == (256, max(48, os.cpu_count() or 1), "fp16")
    assert gpu.jpeg_on_device and not cpu.jpeg_on_device
    pillow = ClipEmbedder(Settings.from_env({**env, "CLIP_DEVICE": "cuda", "JPEG_DECODER": "pillow"}))
    assert pillow.workers == max(1, os.cpu_count() or 1)
    assert (cpu.batch_size, cpu.workers) == (16, 1) and not gpu.loaded and not cpu.loaded
