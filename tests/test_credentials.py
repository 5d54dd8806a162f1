"""Content credentials (C2PA) with the real c2pa-python: generated, saved and downloaded images carry a signed
manifest that validates; a refinement names its parent; a changed byte fails and the page says so; credentials
made elsewhere show on the page and in search; the key never leaks; nothing breaks when signing cannot happen."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import c2pa
import pytest
from PIL import Image

from rag.core import ConfigError
from rag.generation import read_provenance
from rag.library import LibraryFilter
from rag.media import certificates, credentials
from rag.studio import Studio
from tests.conftest import test_settings
from tests.fake_gemini import FakeGemini, image_reply, png_bytes
from ui import asset as asset_ui
from ui import credentials as credentials_ui

FLASH = "gemini-3.1-flash-image"
TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
OFFLINE = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}


def make_studio(data: Path, embedder, fake: FakeGemini, **changes: object) -> Studio:
    return Studio(test_settings(data, gemini_api_key="c2pa-test-key", gemini_base_url=fake.base_url, gemini_retries=0,
                                gemini_model=FLASH, **changes), embedder=embedder)


@pytest.fixture
def made(tmp_path: Path, embedder, fake_gemini: FakeGemini) -> Studio:
    studio = make_studio(tmp_path / "data", embedder, fake_gemini)
    yield studio
    studio.close()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, embedder) -> tuple[Studio, FakeGemini, Path]:
    """One library for the tests that read pages and search (a Milvus Lite library costs seconds to open)."""
    folder = tmp_path_factory.mktemp("credentials")
    with FakeGemini() as fake:
        studio = make_studio(folder / "data", embedder, fake)
        yield studio, fake, folder
        studio.close()


def picture(path: Path, color: tuple[int, int, int], fmt: str = "PNG") -> Path:
    buf = io.BytesIO()
    Image.new("RGB", (24, 16), color).save(buf, fmt)
    path.write_bytes(buf.getvalue())
    return path


def made_elsewhere(folder: Path, color: tuple[int, int, int] = (250, 220, 40)) -> Path:
    """A JPEG with credentials another app signed (its own CA), built here with c2pa-python itself."""
    cert, key = certificates.local_certificate(folder / "their-ca")
    info = c2pa.C2paSignerInfo(alg=c2pa.C2paSigningAlg.ES256, sign_cert=cert.read_bytes(), private_key=key.read_bytes(),
                               ta_url=None)
    manifest = {"claim_generator_info": [{"name": "Adobe Firefly", "version": "3.0"}], "title": "lemons.jpg",
                "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [
                    {"action": "c2pa.created", "digitalSourceType": TRAINED, "softwareAgent": {"name": "Firefly Image 3"}}]}}]}
    source, target = picture(folder / "plain.jpg", color, "JPEG"), folder / f"lemons-{color[0]}.jpg"
    with c2pa.Signer.from_info(info) as signer, c2pa.Builder(manifest) as builder:
        with source.open("rb") as src, target.open("w+b") as dst:
            builder.sign(signer, "image/jpeg", src, dst)
    return target


def manifest_of(path: str | Path) -> tuple[str, dict]:
    """c2pa.Reader's own verdict and active manifest, read straight from the file."""
    with c2pa.Context.from_dict(OFFLINE) as ctx, c2pa.Reader(str(path), context=ctx) as reader:
        return reader.get_validation_state(), reader.get_active_manifest()


def actions(manifest: dict) -> list[dict]:
    return [a for s in manifest["assertions"] if s["label"].startswith("c2pa.actions") for a in s["data"]["actions"]]


def changed_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    at = data.find(b"IDAT") + 8 if path.suffix == ".png" else len(data) // 2
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def test_generated_saved_and_downloaded_images_carry_credentials_that_validate(
        shared: tuple[Studio, FakeGemini, Path], caplog: pytest.LogCaptureFixture) -> None:
    made, fake_gemini, tmp_path = shared
    caplog.set_level(logging.DEBUG)
    theirs = made_elsewhere(tmp_path)
    report = made.ingest_files([picture(tmp_path / "shoe.png", (200, 30, 30)), theirs], folder="refs")
    shoe, lemons = sorted(report.added, key=lambda a: a.filename, reverse=True)
    fake_gemini.push(image_reply(png_bytes((16, 16), (10, 200, 90))), image_reply(png_bytes((16, 16), (10, 90, 200))))
    first = made.generate("the shoe on a beach at dusk", reference_ids=[shoe.id, lemons.id])
    (v1,) = first.versions

    state, manifest = manifest_of(v1.path)
    assert state in ("Valid", "Trusted")  # the local signer is on no trust list: Valid, never Invalid
    (created,) = actions(manifest)
    assert created["action"] == "c2pa.created" and created["digitalSourceType"] == TRAINED
    assert created["softwareAgent"]["name"] == FLASH and created["description"] == "the shoe on a beach at dusk"
    assert manifest["claim_generator_info"][0]["name"] == "Banana Studio"
    ingredients = {i["title"]: i for i in manifest["ingredients"]}
    assert set(ingredients) == {"shoe.png", theirs.name}
    assert {i["relationship"] for i in ingredients.values()} == {"inputTo"}
    assert ingredients[theirs.name].get("active_manifest") and not ingredients["shoe.png"].get("active_manifest")
    assert read_provenance(v1.path)["prompt"] == "the shoe on a beach at dusk"  # our own PNG record still reads
    assert TRAINED in Image.open(v1.path).info["XML:com.adobe.xmp"]  # IPTC DigitalSourceType in XMP

    second = made.refine(first.session_id, "now make the sand black")
    (v2,) = second.versions
    state, manifest = manifest_of(v2.path)
    assert state in ("Valid", "Trusted") and [a["action"] for a in actions(manifest)] == ["c2pa.opened", "c2pa.edited"]
    (parent,) = manifest["ingredients"]
    assert (parent["title"], parent["relationship"]) == ("v1", "parentOf") and parent.get("active_manifest")

    (saved,) = made.save_versions([v1.id]).added
    assert manifest_of(saved.path)[0] in ("Valid", "Trusted") and "ai-generated" in saved.meta["tags"]
    download = asset_ui.download_copy(saved)
    assert Path(download).read_bytes() == Path(v1.path).read_bytes() and manifest_of(download)[0] in ("Valid", "Trusted")
    page = credentials_ui.section(made, saved.id)
    assert "✓ Valid" in page and FLASH.replace("-", "\\-").replace(".", "\\.") in page and "**AI-generated**" in page
    assert "this app's own local certificate" in page and "integrity" in page and "not who made it" in page

    changed_byte(Path(saved.path))
    assert manifest_of(saved.path)[0] == "Invalid"
    page = credentials_ui.section(made, saved.id)
    assert "do not match this image" in page and "✓" not in page

    key = (certificates.credentials_dir(made.settings) / certificates.KEY_FILE).read_text()
    body = "".join(key.splitlines()[1:-1])
    record = json.dumps(credentials_ui.record(made, saved.id))
    history = json.dumps([a.reason for a in made.history()])
    seen = [page, record, history, caplog.text, repr(certificates.signing_key(made.settings)),
            Path(v1.path).read_bytes().decode("latin-1"), credentials_ui.section(made, lemons.id)]
    assert not [s for s in seen if body[:40] in s or body[-40:] in s]  # the private key is nowhere


def test_credentials_made_elsewhere_show_on_the_page_and_in_search(shared: tuple[Studio, FakeGemini, Path]) -> None:
    made, _, tmp_path = shared
    theirs = made_elsewhere(tmp_path, (30, 220, 250))
    (upload,) = made.ingest_uploads([theirs], folder="stock").added
    assert "ai-generated" in upload.meta["tags"] and "Adobe Firefly" in upload.meta["embedded"]
    page = credentials_ui.section(made, upload.id)
    assert "✓ Valid" in page and "Adobe Firefly 3\\.0" in page and "Firefly Image 3" in page and "**AI-generated**" in page
    assert credentials_ui.NOT_TRUSTED in page  # not our signer: integrity, not identity, in plain words
    ai = made.library_page(LibraryFilter(tags=("ai-generated",)))
    assert upload.id in {a.id for a in ai.assets} and {a.source for a in ai.assets} == {"upload", "generated"}
    assert made.library_page().facets["tags"]["ai-generated"] == ai.total < made.library_page().total
    assert {h.asset.id for h in made.search("firefly", k=2)} >= {upload.id}  # the generator's name is in the word field
    plain = made.ingest_files([picture(tmp_path / "plain.png", (1, 2, 3))]).added[0]
    assert credentials_ui.section(made, plain.id) == "" and credentials_ui.record(made, plain.id) is None


def test_the_cli_prints_credentials_and_whether_they_validate(cli, tmp_path: Path) -> None:
    theirs = made_elsewhere(tmp_path)
    out = cli(["credentials", str(theirs), "--json"], tmp_path / "data")
    record = json.loads(out.stdout)["credentials"]
    assert out.returncode == 0 and record["matches"] and record["ai_generated"] and record["app"] == "Adobe Firefly"
    human = cli(["credentials", str(theirs)], tmp_path / "data")
    assert human.returncode == 0 and "valid" in human.stdout and "AI-generated: yes" in human.stdout
    changed_byte(theirs)
    broken = cli(["credentials", str(theirs)], tmp_path / "data")
    assert broken.returncode == 1 and "do not match" in broken.stdout
    none = cli(["credentials", str(picture(tmp_path / "plain.png", (9, 9, 9)))], tmp_path / "data")
    assert none.returncode == 1 and "no content credentials" in none.stdout


def test_a_bad_certificate_is_refused_at_start_naming_the_file(embedder, cli, tmp_path: Path) -> None:
    cert, key = certificates.local_certificate(tmp_path / "org")
    garbage = tmp_path / "broken.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"broken\.pem is not a PEM certificate chain"):
        Studio(test_settings(tmp_path / "a", credentials_cert=garbage, credentials_key=key), embedder=embedder)
    ca_only = tmp_path / "ca.pem"  # the CA's own self-signed certificate: c2pa refuses it as a signer
    ca_only.write_bytes(cert.read_bytes().split(b"-----END CERTIFICATE-----\n")[1])
    out = cli(["stats"], tmp_path / "b", CREDENTIALS_CERT=str(ca_only), CREDENTIALS_KEY=str(key))
    assert out.returncode == 1 and "error: The content credentials certificate" in out.stderr and "ca.pem" in out.stderr


def test_an_image_that_cannot_be_signed_is_saved_and_history_says_why(
        made: Studio, fake_gemini: FakeGemini, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (certificates.credentials_dir(made.settings) / certificates.KEY_FILE).write_text("damaged after start")
    fake_gemini.push(image_reply(png_bytes((16, 16), (90, 90, 9))))
    (v1,) = made.generate("a lamp").versions
    assert Path(v1.path).is_file() and credentials.read(v1.path) is None  # saved, without credentials
    (attempt,) = made.history()
    assert attempt.outcome == "ok" and attempt.reason.endswith(
        "was saved without content credentials: the certificate that signs them could not be used. The server log says why.")
    assert "key.pem" not in attempt.reason and "/" not in attempt.reason  # History is on the page: no server path
    assert "damaged" not in attempt.reason
    assert "key.pem" in caplog.text  # the detail stays in the server log


def test_off_and_without_the_prompt(embedder, fake_gemini: FakeGemini, tmp_path: Path) -> None:
    off = make_studio(tmp_path / "off", embedder, fake_gemini, credentials=False)
    quiet = make_studio(tmp_path / "quiet", embedder, fake_gemini, credentials_include_prompt=False)
    try:
        fake_gemini.push(image_reply(png_bytes()), image_reply(png_bytes()))
        (plain,) = off.generate("a secret product launch").versions
        (signed,) = quiet.generate("a secret product launch").versions
        assert credentials.read(plain.path) is None and not certificates.credentials_dir(off.settings).exists()
        found = credentials.read(signed.path)
        assert found is not None and found.matches and found.agents == (FLASH,) and found.prompt == ""
        assert all("description" not in a for a in actions(manifest_of(signed.path)[1]))
    finally:
        off.close()
        quiet.close()


@pytest.mark.parametrize(("fmt", "mime"), [("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("PNG", "image/png")])
def test_jpeg_webp_and_png_can_be_signed(tmp_path: Path, fmt: str, mime: str) -> None:
    key = certificates.signing_key(test_settings(tmp_path))
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (5, 5, 5)).save(buf, fmt)
    found = credentials.read(credentials.sign(buf.getvalue(), mime, credentials.Facts(model=FLASH, prompt="p"), key))
    assert found is not None and found.matches and found.ai_generated and found.actions == ("c2pa.created",)
