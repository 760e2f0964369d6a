"""The public API for `gradio_client` (/segment, /synthesize, /save_annotation, /model_info) and the guard that keeps
every other event (the page's own, `ui_*`) off Gradio's named API routes."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware
from starlette.responses import JSONResponse

from semflow.samplers import SOLVERS

from .exports import export_dir, save_mask_files
from .failures import user_errors
from .model import gpu
from .overlays import overlay
from .service import Studio, get_studio


@user_errors
@gpu
def segment(image: str | None, steps: Any = None, solver: Any = None, opacity: Any = 0.5) -> tuple[str, str]:
    """/segment: an image file → (class-id PNG, overlay PNG)."""
    studio = get_studio()
    opacity = studio.check_opacity(opacity)
    studio.check_steps_and_solver(steps, solver, studio.pipe.config.segmentation_steps)
    picture = studio.open_photo(image)
    ids, _, _ = studio.segment(picture, steps, solver)
    ids_path, _ = save_mask_files(ids, studio.labels, Path(image).stem if image else "mask")
    overlay_path = str(Path(ids_path).with_name("overlay.png"))
    overlay(picture, ids, studio.labels, opacity).save(overlay_path)
    return ids_path, overlay_path


@user_errors
@gpu
def synthesize(mask: str | None, seed: Any = 0, variants: Any = 1, perturbation: Any = None, steps: Any = None,
               solver: Any = None) -> list[str]:
    """/synthesize: a class-id PNG (or a colour preview) → image files, one per variant (seeds seed, seed + 1, ...)."""
    studio = get_studio()
    studio.check_steps_and_solver(steps, solver, studio.pipe.config.synthesis_steps)
    studio.check_synthesis(variants, seed, perturbation)
    result = studio.synthesize(studio.open_mask(mask), variants, seed, perturbation, steps, solver, round_trip=False)
    folder = Path(tempfile.mkdtemp(dir=export_dir()))
    paths = []
    for image, image_seed in zip(result.images, result.seeds):
        paths.append(str(folder / f"synthesized_seed{image_seed}.png"))
        image.save(paths[-1])
    return paths


@user_errors
def save_annotation(image: str | None, mask: str | None, annotator: str | None = None,
                    source_name: str | None = None) -> dict[str, Any]:
    """/save_annotation: an image file + its class-id PNG (same size) → saved into the annotation folder."""
    studio = get_studio()
    picture = studio.open_photo(image)
    ids = studio.open_mask(mask, size=picture.size)
    saved = studio.save(picture, ids, annotator, source_name or (Path(image).name if image else None))
    return {"saved": saved.name, "annotations": studio.count()}


@user_errors
def model_info() -> dict[str, Any]:
    """/model_info: which model is loaded (name and revision or weights hash, fallback notice) and its label set."""
    return get_studio().info()


def add_endpoints(studio: Studio, model_slot: dict[str, Any]) -> None:
    """The endpoints' hidden components and events (inside a `gr.Blocks`). Numbers arrive unrounded
    (``precision=None``) so that the app, not Gradio, words what is wrong with NaN, infinity or text."""
    config = studio.pipe.config
    with gr.Column(visible=False):
        image = gr.File(label="image", type="filepath")
        steps = gr.Number(value=config.segmentation_steps, label="steps")
        solver = gr.Dropdown(list(SOLVERS), value=config.solver, label="solver")
        opacity = gr.Number(value=0.5, label="opacity")
        ids, overlay_file = gr.File(label="mask_ids"), gr.File(label="overlay")
        gr.Button(visible=False).click(segment, [image, steps, solver, opacity], [ids, overlay_file],
                                       api_name="segment", **model_slot)

        mask = gr.File(label="mask", type="filepath")
        seed = gr.Number(value=0, label="seed")
        variants = gr.Number(value=1, label="variants")
        beta = gr.Number(value=config.perturbation, label="perturbation")
        synthesis_steps = gr.Number(value=config.synthesis_steps, label="steps")
        synthesis_solver = gr.Dropdown(list(SOLVERS), value=config.solver, label="solver")
        images = gr.Gallery(label="images", format="png")
        gr.Button(visible=False).click(synthesize, [mask, seed, variants, beta, synthesis_steps, synthesis_solver],
                                       images, api_name="synthesize", **model_slot)

        save_image, save_mask = gr.File(label="image", type="filepath"), gr.File(label="mask", type="filepath")
        annotator, source = gr.Textbox(value="", label="annotator"), gr.Textbox(value="", label="source_name")
        saved = gr.JSON(label="saved")
        gr.Button(visible=False).click(save_annotation, [save_image, save_mask, annotator, source], saved,
                                       api_name="save_annotation")

        gr.Button(visible=False).click(model_info, None, gr.JSON(label="model_info"), api_name="model_info")


# Gradio answers every event on its named API routes, whatever its api_visibility (6.31): refuse all but the public.
API_ROUTE = re.compile(r"/gradio_api/(?:(?P<by_name>call/v2|call)|run|api)/(?P<name>[^/]+)/?$")


class PublicEndpointsOnly:
    """ASGI middleware: a call by name (``POST /gradio_api/call/<name>``, ``/call/v2/<name>``, ``/run/<name>``,
    ``/api/<name>``) is answered 404 unless <name> is a public endpoint of `blocks`.

    The page calls its own events by index, not by name: on the queue (``/queue/join``) and, for unqueued events such
    as loading an example, ``/run/predict`` with ``fn_index`` in the body; those pass as before."""

    def __init__(self, app, blocks: gr.Blocks) -> None:
        self.app, self.blocks = app, blocks

    async def __call__(self, scope, receive, send) -> None:
        match = API_ROUTE.search(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if match is None or match["name"] in public_endpoints(self.blocks):
            await self.app(scope, receive, send)
            return
        if not match["by_name"]:  # /run and /api take an fn_index in the body, which wins over the name
            body, more = b"", True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
            if _fn_index(body) is not None:
                replayed = False

                async def replay():
                    nonlocal replayed
                    if replayed:
                        return await receive()
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}

                await self.app(scope, replay, send)
                return
        response = JSONResponse({"detail": f"There is no API endpoint named '{match['name']}'."}, status_code=404)
        await response(scope, receive, send)


def _fn_index(body: bytes) -> int | None:
    try:
        index = json.loads(body).get("fn_index")
    except (ValueError, AttributeError):
        return None
    return index if isinstance(index, int) and not isinstance(index, bool) else None


def public_endpoints(blocks: gr.Blocks) -> set[str]:
    return {fn.api_name for fn in blocks.fns.values() if fn.api_visibility == "public"}


def guard(blocks: gr.Blocks) -> Middleware:
    """The middleware for ``launch(app_kwargs={"middleware": [...]})``."""
    return Middleware(PublicEndpointsOnly, blocks=blocks)
