"""Generate tab: references from Search (or uploaded), a prompt, and Nano Banana's answer."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import gradio as gr

from rag.config import ASPECT_RATIOS
from rag.errors import BananaError
from rag.models import MAX_IMAGES_PER_RUN, estimate_cost
from rag.studio import Studio

from .common import OnePerUser, gallery_items, progress_callback, user_errors

GO = "Generate"
EXAMPLE_PROMPTS = [
    "Product shot of this item on a marble counter, soft morning light, 4k e-commerce style",
    "The same character in a different pose, running, on a plain white background",
    "Combine these references into one outfit render, full body, studio lighting",
    "A seamless pattern inspired by these images, pastel colours",
    "This logo as an embossed gold emblem on dark leather",
]


def _cost_md(studio: Studio, n: float) -> str:
    cost = estimate_cost(int(n), studio.settings.gemini_model)
    return f"Estimated cost: about **${cost:.3f}** for {int(n)} image(s) at list price ({studio.settings.gemini_model})."


def build(studio: Studio, selected: gr.State) -> dict[str, Any]:
    c = _render(studio)
    _listen(studio, selected, c)
    _api(studio)
    return {"show_refs": (c.show_refs, [selected], [selected, c.refs, c.refs_md])}


def _render(studio: Studio) -> SimpleNamespace:
    enabled, why = studio.generation_status()
    c = SimpleNamespace(enabled=enabled)
    gr.Markdown(f"**{why}**" if not enabled else why)
    gr.Markdown("### References")
    c.refs_md = gr.Markdown(f"No references yet. Pick some on the Search tab, or upload below (up to {studio.max_references}).")
    c.refs = gr.Gallery(label="References from the library (click one to remove it)", columns=8, rows=1, height=200, object_fit="contain", allow_preview=False, preview=False, fit_columns=False)
    c.extra = gr.File(label="Extra reference images (not added to the library)", file_count="multiple", type="filepath")
    c.prompt = gr.Textbox(label="Prompt", lines=3, placeholder="What should Nano Banana make from these references?")
    gr.Examples(EXAMPLE_PROMPTS, inputs=c.prompt, label="Example prompts")
    with gr.Row():
        c.aspect = gr.Dropdown(list(ASPECT_RATIOS), value="1:1", label="Aspect ratio")
        c.n = gr.Slider(1, MAX_IMAGES_PER_RUN, value=1, step=1, label="Images")
    c.cost = gr.Markdown(_cost_md(studio, 1))
    c.go = gr.Button(GO, variant="primary", interactive=enabled, elem_id="generate-button")
    c.reply = gr.Markdown()
    c.outputs = gr.Gallery(
        label="Results", columns=4, height=420, object_fit="contain", fit_columns=False, buttons=["download", "fullscreen"]
    )
    c.output_paths = gr.State([])
    c.save = gr.Button("Save to library", interactive=False, elem_id="save-generated")
    c.saved_md = gr.Markdown()

    def show_refs(ids: list[str]) -> tuple[Any, ...]:
        pictures, kept = gallery_items(studio, studio.get(ids)) if ids else ([], [])
        text = f"**{len(kept)} of {studio.max_references}** references from the library." if kept else (
            f"No references from the library. Pick some on the Search tab, or upload below (up to {studio.max_references})."
        )
        return kept, pictures, text

    c.show_refs = show_refs
    return c


def _listen(studio: Studio, selected: gr.State, c: SimpleNamespace) -> None:
    in_flight = OnePerUser()

    def remove_ref(ids: list[str], evt: gr.SelectData) -> tuple[Any, ...]:
        return c.show_refs([i for k, i in enumerate(ids) if k != evt.index])

    def start() -> tuple[Any, ...]:
        """Before a paid request: lock the button and clear the last run, so Save can only act on what is shown."""
        return gr.Button(value="Generating…", interactive=False), [], [], "", gr.Button(interactive=False), ""

    def run(text: str, ids: list[str], files: list[str] | None, ratio: str, count: float, request: gr.Request,
            progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        progress(0, desc="Asking Nano Banana…")
        try:
            with in_flight.hold(request):
                generation = studio.generate(text or "", reference_ids=ids or [], reference_files=files or [],
                                             aspect_ratio=ratio, n=int(count))
        except BananaError as exc:
            gr.Warning(str(exc))
            return [], [], f"**Nothing was generated.** {exc}", gr.Button(interactive=False), ""
        paths = [str(p) for p in generation.paths]
        text_out = f"**Model:** {generation.result.text}" if generation.result.text else ""
        if not paths:
            gr.Warning("The model answered without an image; its reply is shown below.")
        return [(p, f"image {i + 1}") for i, p in enumerate(paths)], paths, text_out, gr.Button(interactive=bool(paths)), ""

    @user_errors
    def save_outputs(paths: list[str], progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        report = studio.save_generated(paths, progress=progress_callback(progress))
        return f"Saved: {report.summary()} They are searchable now (source: generated).", gr.Button(interactive=False)

    run_outputs = [c.outputs, c.output_paths, c.reply, c.save, c.saved_md]
    c.n.change(lambda v: _cost_md(studio, v), c.n, c.cost, api_name=False, queue=False)
    c.refs.select(remove_ref, [selected], [selected, c.refs, c.refs_md], api_name=False, queue=False)
    c.go.click(start, None, [c.go, *run_outputs], api_name=False, queue=False).then(
        user_errors(run), [c.prompt, selected, c.extra, c.aspect, c.n], run_outputs,
        api_name=False, concurrency_limit=2, concurrency_id="generate",
    ).then(lambda: gr.Button(value=GO, interactive=c.enabled), None, c.go, api_name=False, queue=False)
    c.save.click(save_outputs, [c.output_paths], [c.saved_md, c.save], api_name=False, concurrency_id="ingest", concurrency_limit=1)


def _api(studio: Studio) -> None:
    @user_errors
    def save_generated(paths: list[str]) -> list[str]:
        """Add generated images (paths from /generate) to the library; returns their asset ids."""
        return [a.id for a in studio.save_generated(paths).added]

    @user_errors
    def generate(prompt: str, reference_ids: list[str], aspect_ratio: str = "1:1", n: int = 1) -> dict[str, Any]:
        """Generate from library references; returns output paths (on the server) and the model's text."""
        generation = studio.generate(prompt, reference_ids=reference_ids, aspect_ratio=aspect_ratio, n=n)
        return {"images": [str(p) for p in generation.paths], "text": generation.result.text}

    gr.api(generate, api_name="generate", concurrency_id="generate", concurrency_limit=2)
    gr.api(save_generated, api_name="save_generated", concurrency_id="ingest", concurrency_limit=1)
