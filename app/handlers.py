"""What each button does: plain functions from UI/API values to UI/API values; user mistakes become `gr.Error`."""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import PIL.Image

from semflow.samplers import SOLVERS

from .annotations import AnnotationStore
from .editor import blank_layer, labels_to_layer, layer_to_labels
from .exports import save_gif, save_mask_files
from .inputs import InputError, fit_for_editing, open_image, open_mask
from .model import LoadedModel, get_model, gpu
from .overlays import agreement, legend_html, overlay

logger = logging.getLogger(__name__)
MAX_STEPS = 100
MAX_VARIANTS = 4


def user_errors(fn: Callable) -> Callable:
    """Turn mistakes in what people send (bad files, sizes, settings) into `gr.Error` with a plain sentence, and
    anything unexpected into a short apology (the details go to the server log, never to the browser)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (InputError, ValueError, TypeError) as error:
            raise gr.Error(str(error) or type(error).__name__, print_exception=False) from None
        except Exception:
            logger.exception("unexpected error in %s", fn.__name__)
            raise gr.Error("Something went wrong on the server while doing that; please try again.",
                           print_exception=False) from None

    return wrapper


def empty_state() -> dict[str, Any]:
    """Per-browser-session state: the photo, its predicted mask and the last synthesized images."""
    return {"image": None, "source": None, "ids": None, "steps": None, "synthesized": []}


# --- settings -----------------------------------------------------------------------------------------------------

def check_settings(steps: Any, solver: Any) -> tuple[int, str]:
    if solver not in SOLVERS:
        raise InputError(f"Unknown solver '{solver}'; choose one of {', '.join(SOLVERS)}.")
    try:
        steps = int(steps)
    except (TypeError, ValueError):
        raise InputError(f"Steps must be a whole number, got '{steps}'.") from None
    if not 1 <= steps <= MAX_STEPS:
        raise InputError(f"Steps must be between 1 and {MAX_STEPS}, got {steps}.")
    return steps, solver


def check_synthesis_settings(model: LoadedModel, variants: Any, seed: Any, beta: Any) -> tuple[int, int, float]:
    try:
        variants, seed, beta = int(variants), int(seed), float(beta)
    except (TypeError, ValueError):
        raise InputError("Variants and seed must be whole numbers and β a number.") from None
    if not 1 <= variants <= MAX_VARIANTS:
        raise InputError(f"Choose between 1 and {MAX_VARIANTS} variants, got {variants}.")
    if seed < 0:
        raise InputError(f"The seed must be 0 or more, got {seed}.")
    limit = model.pipe.anchor_spec.s / 2
    if not 0 <= beta < limit:
        raise InputError(f"β must be at least 0 and below {limit:g} (half the anchor spacing), got {beta:g}.")
    return variants, seed, beta


# --- segment ------------------------------------------------------------------------------------------------------

@user_errors
def load_image(path: str | None, state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A new photo: downscaled for editing if very large; the editor shows it with an empty mask layer."""
    if path is None:  # the image was cleared
        return empty_state(), None, ""
    image, notice = fit_for_editing(open_image(path))
    if notice:
        gr.Warning(notice)
    state = {**empty_state(), "image": image, "source": Path(path).name if path else None}
    layer = np.zeros((image.height, image.width, 4), np.uint8)
    editor = {"background": image, "layers": [layer], "composite": None}
    return state, editor, notice or f"Loaded a {image.width}x{image.height} image. Press **Segment**."


@user_errors
@gpu
def segment(state: dict[str, Any], steps: Any, solver: Any, opacity: float,
            progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple:
    """Image → mask; shows the overlay and legend and puts the prediction into the editor."""
    if state is None or state.get("image") is None:
        raise InputError("Please upload an image (or pick an example) first.")
    steps, solver = check_settings(steps, solver)
    model = get_model()
    image = state["image"]
    ids = model.pipe.segment(image, num_inference_steps=steps, solver=solver).labels[0]
    state = {**state, "ids": ids, "steps": steps}
    editor = {"background": image, "layers": [labels_to_layer(ids, model.pipe.labels)], "composite": None}
    return (state, overlay(image, ids, model.pipe.labels, opacity), legend_html(ids, model.pipe.labels), editor)


@user_errors
def update_overlay(state: dict[str, Any], opacity: float) -> PIL.Image.Image | None:
    if not state or state.get("image") is None or state.get("ids") is None:
        return None
    return overlay(state["image"], state["ids"], get_model().pipe.labels, opacity)


@user_errors
def blank_layout(width: Any, height: Any, fill: str | None, state: dict[str, Any]) -> tuple:
    """A blank canvas to paint a layout from scratch, filled with one class (or empty)."""
    labels = get_model().pipe.labels
    try:
        width, height = int(width), int(height)
    except (TypeError, ValueError):
        raise InputError("Width and height must be whole numbers.") from None
    if not (64 <= width <= 2048 and 64 <= height <= 2048):
        raise InputError("Width and height must be between 64 and 2048 pixels.")
    class_id = None if not fill or fill == labels.ignore_name else _class_id(fill, labels)
    background = PIL.Image.new("RGB", (width, height), (255, 255, 255))
    editor = {"background": background, "layers": [blank_layer(height, width, class_id, labels)], "composite": None}
    state = {**empty_state(), "source": "blank-layout"}
    return state, editor, f"Blank {width}x{height} layout. Paint classes, then **Synthesize**."


@user_errors
def load_layout(mask_path: str | None) -> tuple:
    """An example layout (a class-id PNG) into the editor on a blank canvas."""
    labels = get_model().pipe.labels
    ids = open_mask(mask_path, labels)
    background = PIL.Image.new("RGB", (ids.shape[1], ids.shape[0]), (255, 255, 255))
    editor = {"background": background, "layers": [labels_to_layer(ids, labels)], "composite": None}
    state = {**empty_state(), "source": Path(mask_path).name if mask_path else "layout"}
    return state, editor, "Layout loaded into the editor. Paint over it, then **Synthesize**."


def _class_id(name: str, labels) -> int:
    if name not in labels.class_names:
        raise InputError(f"Unknown class '{name}'.")
    return labels.class_names.index(name)


# --- the corrected mask -------------------------------------------------------------------------------------------

def mask_from_editor(editor: dict[str, Any] | None) -> np.ndarray:
    """The painted mask layer as class ids (anti-aliased strokes snapped to the palette)."""
    labels = get_model().pipe.labels
    layers = (editor or {}).get("layers") or []
    layers = [layer for layer in layers if layer is not None]
    if not layers:
        raise InputError("The editor is empty: upload an image and segment it, or start a blank layout.")
    layer = np.asarray(layers[0])
    if layer.ndim != 3 or layer.shape[2] not in (3, 4):
        raise InputError("The mask layer could not be read; please segment again or start a blank layout.")
    return layer_to_labels(layer.astype(np.uint8), labels)


@user_errors
@gpu
def synthesize(editor: dict[str, Any] | None, state: dict[str, Any], variants: Any, seed: Any, beta: Any, steps: Any,
               solver: Any, show_trajectory: bool, direction: str,
               progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple:
    """Mask → 1-4 images; a round-trip check per variant; optionally the trajectory as an animation."""
    model = get_model()
    steps, solver = check_settings(steps, solver)
    variants, seed, beta = check_synthesis_settings(model, variants, seed, beta)
    ids = mask_from_editor(editor)
    pipe = model.pipe
    keep_trajectory = show_trajectory and direction == "mask → image"
    out = pipe.synthesize(ids, num_inference_steps=steps, solver=solver, perturbation=beta, seed=seed,
                          num_images_per_mask=variants, return_trajectory=keep_trajectory)
    checks = []
    for image, image_seed in zip(out.images, out.seeds):
        back = pipe.segment(image).labels[0]
        scores = agreement(back, ids, pipe.labels)
        checks.append(f"| {image_seed} | {scores['pixel_agreement']:.1f}% | {scores['miou']:.1f} |")
    report = ("Round trip (segment each synthesized image, compare with the mask):\n\n"
              "| seed | pixel agreement | mIoU |\n| --- | --- | --- |\n" + "\n".join(checks))
    gif = None
    if show_trajectory:
        if direction == "image → mask":
            source = state.get("image") if state and state.get("image") is not None else out.images[0]
            frames = pipe.segment(source, num_inference_steps=steps, solver=solver,
                                  return_trajectory=True).trajectory[0]
        else:
            frames = out.trajectory[0]
        gif = save_gif(frames, "trajectory")
    state = {**(state or empty_state()), "synthesized": out.images}
    gallery = [(image, f"seed {s}") for image, s in zip(out.images, out.seeds)]
    return state, gallery, report, gif


# --- saving -------------------------------------------------------------------------------------------------------

@user_errors
def save_annotation(editor: dict[str, Any] | None, state: dict[str, Any], annotator: str | None) -> tuple:
    """Save the photo (or, for a painted layout, the first synthesized image) with the corrected mask."""
    model = get_model()
    ids = mask_from_editor(editor)
    state = state or empty_state()
    image, image_source = state.get("image"), "upload"
    if image is None and state.get("synthesized"):
        image, image_source = state["synthesized"][0], "synthesized"
    if image is None:
        raise InputError("There is no image to save with this mask: upload one, or synthesize from the layout first.")
    if image.size != (ids.shape[1], ids.shape[0]):
        raise InputError(f"The mask is {ids.shape[1]}x{ids.shape[0]} but the image is {image.width}x{image.height}.")
    saved = _store().save(image, ids, _metadata(model, annotator, state.get("source"), state.get("steps"),
                                                image_source))
    ids_path, color_path = save_mask_files(ids, model.pipe.labels, saved.name)
    return f"Saved **{saved.name}** ({len(_store().rows())} annotations in the folder).", ids_path, color_path


@user_errors
def export_mask(editor: dict[str, Any] | None, state: dict[str, Any]) -> tuple[str, str]:
    ids = mask_from_editor(editor)
    return save_mask_files(ids, get_model().pipe.labels, (state or {}).get("source") or "mask")


@user_errors
def push_annotations() -> str:
    repo_id = os.environ.get("SEMFLOW_ANNOTATIONS_REPO")
    if not repo_id:
        raise InputError("Set SEMFLOW_ANNOTATIONS_REPO (and HF_TOKEN) to push annotations to the Hub.")
    url = _store().push(repo_id, token=os.environ.get("HF_TOKEN"))
    return "Nothing new to push." if url is None else f"Pushed the new annotations to `{repo_id}`."


def _store() -> AnnotationStore:
    return AnnotationStore()


def _metadata(model: LoadedModel, annotator: str | None, source: str | None, steps: int | None,
              image_source: str) -> dict[str, Any]:
    return {
        "annotator": (annotator or "").strip() or "anonymous",
        "model": model.source,
        "model_revision": model.revision,
        "label_set": model.pipe.labels.name,
        "segmentation_steps": steps,
        "source_file": source,
        "image_source": image_source,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


# --- the API ------------------------------------------------------------------------------------------------------

@user_errors
@gpu
def api_segment(image: str | None, steps: Any = None, solver: Any = None, opacity: Any = 0.5) -> tuple[str, str]:
    """/segment: an image file → (class-id PNG, overlay PNG)."""
    pipe = get_model().pipe
    steps, solver = check_settings(pipe.config.segmentation_steps if steps is None else steps,
                                   solver or pipe.config.solver)
    picture = open_image(image)
    ids = pipe.segment(picture, num_inference_steps=steps, solver=solver).labels[0]
    ids_path, _ = save_mask_files(ids, pipe.labels, Path(image).stem if image else "mask")
    overlay_path = str(Path(ids_path).with_name("overlay.png"))
    overlay(picture, ids, pipe.labels, float(opacity)).save(overlay_path)
    return ids_path, overlay_path


@user_errors
@gpu
def api_synthesize(mask: str | None, seed: Any = 0, variants: Any = 1, perturbation: Any = None, steps: Any = None,
                   solver: Any = None) -> list[str]:
    """/synthesize: a class-id PNG (or colour preview) → image files."""
    model = get_model()
    pipe = model.pipe
    steps, solver = check_settings(pipe.config.synthesis_steps if steps is None else steps,
                                   solver or pipe.config.solver)
    beta = pipe.config.perturbation if perturbation is None else perturbation
    variants, seed, beta = check_synthesis_settings(model, variants, seed, beta)
    ids = open_mask(mask, pipe.labels)
    out = pipe.synthesize(ids, num_inference_steps=steps, solver=solver, perturbation=beta, seed=seed,
                          num_images_per_mask=variants)
    folder = Path(save_mask_files(ids, pipe.labels, "mask")[0]).parent
    paths = []
    for image, image_seed in zip(out.images, out.seeds):
        image.save(folder / f"synthesized_seed{image_seed}.png")
        paths.append(str(folder / f"synthesized_seed{image_seed}.png"))
    return paths


def api_model_info() -> dict[str, Any]:
    """/model_info: which model is loaded (source, revision, fallback notice) and its label set."""
    model = get_model()
    labels = model.pipe.labels
    return {"model": model.source, "revision": model.revision, "notice": model.notice,
            "label_set": labels.to_dict(), "resolution": list(model.pipe.resolution),
            "defaults": {"segmentation_steps": model.pipe.config.segmentation_steps,
                         "synthesis_steps": model.pipe.config.synthesis_steps, "solver": model.pipe.config.solver,
                         "perturbation": model.pipe.config.perturbation}}


@user_errors
def api_save_annotation(image: str | None, mask: str | None, annotator: str | None = None,
                        source_name: str | None = None) -> dict[str, Any]:
    """/save_annotation: an image file + its class-id PNG (same size) → saved into the annotation folder."""
    model = get_model()
    picture = open_image(image)
    ids = open_mask(mask, model.pipe.labels, size=picture.size)
    saved = _store().save(picture, ids, _metadata(model, annotator, source_name or (Path(image).name if image else
                                                                                   None), None, "upload"))
    return {"saved": saved.name, "annotations": len(_store().rows())}
