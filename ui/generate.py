"""Generate tab: references from Search (or uploaded), a prompt, and Nano Banana's answer."""

from __future__ import annotations

from typing import Any

import gradio as gr

from rag.config import ASPECT_RATIOS
from rag.models import MAX_IMAGES_PER_RUN, estimate_cost
from rag.studio import Studio

from .common import gallery_items, progress_callback, user_errors

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
    enabled, why = studio.generation_status()
    gr.Markdown(f"**{why}**" if not enabled else why)
    gr.Markdown("### References")
    refs_md = gr.Markdown(f"No references yet. Pick some on the Search tab, or upload below (up to {studio.max_references}).")
    refs = gr.Gallery(label="References from the library (click one to remove it)", columns=8, rows=1, height=200, object_fit="contain", allow_preview=False, preview=False, fit_columns=False)
    extra = gr.File(label="Extra reference images (not added to the library)", file_count="multiple", type="filepath")
    prompt = gr.Textbox(label="Prompt", lines=3, placeholder="What should Nano Banana make from these references?")
    gr.Examples(EXAMPLE_PROMPTS, inputs=prompt, label="Example prompts")
    with gr.Row():
        aspect = gr.Dropdown(list(ASPECT_RATIOS), value="1:1", label="Aspect ratio")
        n = gr.Slider(1, MAX_IMAGES_PER_RUN, value=1, step=1, label="Images")
    cost = gr.Markdown(_cost_md(studio, 1))
    go = gr.Button("Generate", variant="primary", interactive=enabled)
    reply = gr.Markdown()
    outputs = gr.Gallery(
        label="Results", columns=4, height=420, object_fit="contain", fit_columns=False, buttons=["download", "fullscreen"]
    )
    output_paths = gr.State([])
    save = gr.Button("Save to library", interactive=False)
    saved_md = gr.Markdown()

    def show_refs(ids: list[str]) -> tuple[Any, ...]:
        pictures, kept = gallery_items(studio, studio.get(ids)) if ids else ([], [])
        text = f"**{len(kept)} of {studio.max_references}** references from the library." if kept else (
            f"No references from the library. Pick some on the Search tab, or upload below (up to {studio.max_references})."
        )
        return kept, pictures, text

    def remove_ref(ids: list[str], evt: gr.SelectData) -> tuple[Any, ...]:
        return show_refs([i for k, i in enumerate(ids) if k != evt.index])

    @user_errors
    def run(text: str, ids: list[str], files: list[str] | None, ratio: str, count: float, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        progress(0, desc="Asking Nano Banana…")
        generation = studio.generate(text or "", reference_ids=ids or [], reference_files=files or [], aspect_ratio=ratio, n=int(count))
        paths = [str(p) for p in generation.paths]
        text_out = f"**Model:** {generation.result.text}" if generation.result.text else ""
        if not paths:
            gr.Warning("The model answered without an image; its reply is shown below.")
        return [(p, f"image {i + 1}") for i, p in enumerate(paths)], paths, text_out, gr.Button(interactive=bool(paths)), ""

    @user_errors
    def save_outputs(paths: list[str], progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        report = studio.save_generated(paths, progress=progress_callback(progress))
        return f"Saved: {report.summary()} They are searchable now (source: generated).", gr.Button(interactive=False)

    n.change(lambda v: _cost_md(studio, v), n, cost, api_name=False, queue=False)
    refs.select(remove_ref, [selected], [selected, refs, refs_md], api_name=False, queue=False)
    go.click(
        run, [prompt, selected, extra, aspect, n], [outputs, output_paths, reply, save, saved_md],
        api_name=False, concurrency_limit=2, concurrency_id="generate",
    )
    save.click(save_outputs, [output_paths], [saved_md, save], api_name=False, concurrency_id="ingest", concurrency_limit=1)

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
    return {"show_refs": (show_refs, [selected], [selected, refs, refs_md])}
