"""The public API for `gradio_client` (/segment, /synthesize, /edit, /save_annotation, /model_info) and the guard that
keeps every other event (the page's own, `ui_*`) off Gradio's API routes."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import PIL.Image
from starlette.middleware import Middleware
from starlette.responses import JSONResponse

from semflow.solvers import SOLVERS

from .exports import export_dir, save_mask_files
from .failures import user_errors
from .model import gpu
from .service import EDIT_MARGIN, EDIT_STRENGTH, Studios


class Endpoints:
    """The public endpoints, on the configured model's studio of `studios`; each hands what it is given to the studio,
    which checks it."""

    def __init__(self, studios: Studios) -> None:
        self.studios = studios

    @user_errors
    @gpu
    def segment(self, image: str | None, steps: Any = None, solver: Any = None, opacity: Any = 0.5) -> tuple[str, str]:
        """/segment: an image file → (class-id PNG, overlay PNG)."""
        studio = self.studios.get()
        picture = studio.open_photo(image)
        ids, _, _ = studio.segment(picture, steps, solver)
        shown = studio.view(picture, ids, opacity)
        ids_path, _ = save_mask_files(ids, studio.labels, Path(image).stem if image else "mask")
        overlay_path = str(Path(ids_path).with_name("overlay.png"))
        shown.save(overlay_path)
        return ids_path, overlay_path

    @user_errors
    @gpu
    def synthesize(self, mask: str | None, seed: Any = 0, variants: Any = 1, perturbation: Any = None,
                   steps: Any = None, solver: Any = None) -> list[str]:
        """/synthesize: a class-id PNG (or a colour preview) → image files, one per variant (seeds seed, seed + 1,
        ...)."""
        studio = self.studios.get()
        result = studio.synthesize(studio.open_mask(mask), variants, seed, perturbation, steps, solver,
                                   round_trip=False)
        return save_images(result.images, result.seeds, "synthesized")[0]

    @user_errors
    @gpu
    def edit(self, image: str | None, mask: str | None, seed: Any = 0, variants: Any = 1, margin: Any = EDIT_MARGIN,
             strength: Any = EDIT_STRENGTH, perturbation: Any = None, steps: Any = None,
             solver: Any = None) -> tuple[list[str], str]:
        """/edit: a photo + its edited class-id PNG (same size) → (the edited photos, one per variant; the region that
        was allowed to change, a PNG: 255 there, 0 where the photo's own pixels are kept). What changed is where the
        mask differs from the photo's own segmentation."""
        studio = self.studios.get()
        picture = studio.open_photo(image)
        result = studio.edit(picture, studio.open_mask(mask, size=picture.size), None, variants, seed, margin,
                             strength, perturbation, steps, solver, round_trip=False)
        paths, folder = save_images(result.images, result.seeds, "edited")
        region = str(folder / "region.png")
        PIL.Image.fromarray(result.region.astype(np.uint8) * 255).save(region)
        return paths, region

    @user_errors
    def save_annotation(self, image: str | None, mask: str | None, annotator: str | None = None,
                        source_name: str | None = None) -> dict[str, Any]:
        """/save_annotation: an image file + its class-id PNG (same size) → saved into the annotation folder."""
        studio = self.studios.get()
        picture = studio.open_photo(image)
        ids = studio.open_mask(mask, size=picture.size)
        saved = studio.save(picture, ids, annotator, source_name or (Path(image).name if image else None))
        return {"saved": saved.name, "annotations": studio.count()}

    @user_errors
    def model_info(self) -> dict[str, Any]:
        """/model_info: which model is loaded (name and revision or weights hash, fallback notice) and what it is: its
        one description (`SemFlowPipeline.describe`: label set, resolution, defaults, training data and figures)."""
        return self.studios.get().info()


def add_endpoints(studios: Studios, model_slot: dict[str, Any]) -> None:
    """The endpoints' hidden components and events (inside a `gr.Blocks`). Numbers arrive unrounded
    (``precision=None``) so that the app, not Gradio, words what is wrong with NaN, infinity or text."""
    endpoints, config = Endpoints(studios), studios.get().pipe.config
    with gr.Column(visible=False):
        image = gr.File(label="image", type="filepath")
        steps = gr.Number(value=config.segmentation_steps, label="steps")
        solver = gr.Dropdown(list(SOLVERS), value=config.solver, label="solver")
        opacity = gr.Number(value=0.5, label="opacity")
        ids, overlay_file = gr.File(label="mask_ids"), gr.File(label="overlay")
        gr.Button(visible=False).click(endpoints.segment, [image, steps, solver, opacity], [ids, overlay_file],
                                       api_name="segment", **model_slot)

        mask = gr.File(label="mask", type="filepath")
        seed = gr.Number(value=0, label="seed")
        variants = gr.Number(value=1, label="variants")
        beta = gr.Number(value=config.perturbation, label="perturbation")
        synthesis_steps = gr.Number(value=config.synthesis_steps, label="steps")
        synthesis_solver = gr.Dropdown(list(SOLVERS), value=config.solver, label="solver")
        images = gr.Gallery(label="images", format="png")
        gr.Button(visible=False).click(endpoints.synthesize,
                                       [mask, seed, variants, beta, synthesis_steps, synthesis_solver], images,
                                       api_name="synthesize", **model_slot)

        save_image, save_mask = gr.File(label="image", type="filepath"), gr.File(label="mask", type="filepath")
        annotator, source = gr.Textbox(value="", label="annotator"), gr.Textbox(value="", label="source_name")
        saved = gr.JSON(label="saved")
        gr.Button(visible=False).click(endpoints.save_annotation, [save_image, save_mask, annotator, source], saved,
                                       api_name="save_annotation")

        gr.Button(visible=False).click(endpoints.model_info, None, gr.JSON(label="model_info"), api_name="model_info")

        edit_image, edit_mask = gr.File(label="image", type="filepath"), gr.File(label="mask", type="filepath")
        edit_seed, edit_variants = gr.Number(value=0, label="seed"), gr.Number(value=1, label="variants")
        margin = gr.Number(value=EDIT_MARGIN, label="margin")
        strength = gr.Number(value=EDIT_STRENGTH, label="strength")
        edit_beta = gr.Number(value=config.perturbation, label="perturbation")
        edit_steps = gr.Number(value=config.synthesis_steps, label="steps")
        edit_solver = gr.Dropdown(list(SOLVERS), value=config.solver, label="solver")
        edited, region = gr.Gallery(label="images", format="png"), gr.File(label="region")
        gr.Button(visible=False).click(endpoints.edit, [edit_image, edit_mask, edit_seed, edit_variants, margin,
                                                        strength, edit_beta, edit_steps, edit_solver],
                                       [edited, region], api_name="edit", **model_slot)


def save_images(images: list[PIL.Image.Image], seeds: list[int], stem: str) -> tuple[list[str], Path]:
    """`images` as ``<stem>_seed<seed>.png`` files in a new export folder: their paths, and the folder."""
    folder = Path(tempfile.mkdtemp(dir=export_dir()))
    paths = []
    for image, seed in zip(images, seeds):
        paths.append(str(folder / f"{stem}_seed{seed}.png"))
        image.save(paths[-1])
    return paths, folder


_WORDS = re.compile(r"\W+")  # an event's name is one word (letters, digits, "_")


class PublicEndpointsOnly:
    """ASGI middleware: a request whose path names an event of `blocks` that is not public (the page's own: any word
    of the path, between slashes, dots or "=", equal to its name, on any route) is answered 404, so that Gradio's
    routes that run an event by its name (``/call/<name>``, ``/run/<name>``, ... whatever a release adds) run only
    the public ones.

    The page calls its own events by index, not by name: on the queue (``/queue/join``) and, for unqueued events such
    as loading an example, ``/run/predict`` with ``fn_index`` in the body; those pass as before."""

    def __init__(self, app, blocks: gr.Blocks) -> None:
        self.app, self.blocks = app, blocks

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            named = set(_WORDS.split(scope["path"])) & private_names(self.blocks)
            if named:
                response = JSONResponse({"detail": f"There is no API endpoint named '{min(named)}'."},
                                        status_code=404)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def public_endpoints(blocks: gr.Blocks) -> set[str]:
    return {fn.api_name for fn in blocks.fns.values() if fn.api_visibility == "public"}


def private_names(blocks: gr.Blocks) -> set[str]:
    """The names of the events that are not public API (the page's own)."""
    return {fn.api_name for fn in blocks.fns.values() if fn.api_visibility != "public" and fn.api_name} \
        - public_endpoints(blocks)


def guard(blocks: gr.Blocks) -> Middleware:
    """The middleware for ``launch(app_kwargs={"middleware": [...]})``."""
    return Middleware(PublicEndpointsOnly, blocks=blocks)
