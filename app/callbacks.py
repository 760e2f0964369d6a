"""What the page's events do: component values and the tab's `Session` in, component values out. The work is the
`service`'s; only a person's mistakes reach the browser as sentences (`failures`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import PIL.Image

from .editor import blank_background, blank_layer, editor_value, labels_to_layer, mask_from_editor
from .errors import InputError
from .exports import save_gif, save_mask_files
from .failures import user_errors
from .model import gpu
from .overlays import legend_html, overlay
from .service import Synthesis, get_studio
from .session import BLANK_LAYOUT, Session

MASK_TO_IMAGE, IMAGE_TO_MASK = "mask → image", "image → mask"  # the trajectory's directions


@user_errors
def load_image(path: str | None, session: Session) -> tuple[Session, dict[str, Any] | None, str]:
    """A new photo (downscaled for editing when very large) into the editor, with an empty mask layer."""
    if path is None:  # the image was cleared
        return Session(), None, ""
    image, notice = get_studio().open_for_editing(path)
    if notice:
        gr.Warning(notice)
    return (Session(image=image, source=Path(path).name), editor_value(image),
            notice or f"Loaded a {image.width}x{image.height} image. Press **Segment**.")


@user_errors
@gpu
def segment(session: Session, steps: Any, solver: Any, opacity: Any,
            progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple:
    """Image → mask: the overlay, the legend, and the prediction as the editor's mask layer."""
    if session is None or session.image is None:
        raise InputError("Please upload an image (or pick an example) first.")
    studio = get_studio()
    opacity = studio.check_opacity(opacity)
    ids, steps = studio.segment(session.image, steps, solver)
    labels = studio.labels
    return (session.replace(ids=ids, steps=steps), overlay(session.image, ids, labels, opacity),
            legend_html(ids, labels), editor_value(session.image, labels_to_layer(ids, labels)))


@user_errors
def update_overlay(session: Session, opacity: Any) -> PIL.Image.Image | None:
    if session is None or session.image is None or session.ids is None:
        return None
    studio = get_studio()
    return overlay(session.image, session.ids, studio.labels, studio.check_opacity(opacity))


@user_errors
def blank_layout(width: Any, height: Any, fill: str | None, session: Session) -> tuple:
    """A blank canvas to paint a layout from scratch, filled with one class (or empty)."""
    studio = get_studio()
    width, height = studio.check_blank_size(width, height)
    layer = blank_layer(height, width, studio.class_id(fill), studio.labels)
    return (Session(source=BLANK_LAYOUT), editor_value(blank_background(width, height), layer),
            f"Blank {width}x{height} layout. Paint classes, then **Synthesize**.")


@user_errors
def load_layout(mask_path: str | None) -> tuple:
    """An example layout (a class-id PNG) into the editor, on a blank canvas."""
    studio = get_studio()
    ids = studio.open_mask(mask_path)
    background = blank_background(ids.shape[1], ids.shape[0])
    return (Session(source=Path(mask_path).name if mask_path else "layout"),
            editor_value(background, labels_to_layer(ids, studio.labels)),
            "Layout loaded into the editor. Paint over it, then **Synthesize**.")


@user_errors
@gpu
def synthesize(editor: dict[str, Any] | None, session: Session, variants: Any, seed: Any, beta: Any, steps: Any,
               solver: Any, show_trajectory: bool, direction: str,
               progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple:
    """Mask → 1-4 images with a round-trip check each; optionally the trajectory as an animation."""
    studio = get_studio()
    session = session or Session()
    ids = mask_from_editor(editor, studio.labels)
    result = studio.synthesize(ids, variants, seed, beta, steps, solver,
                               trajectory=show_trajectory and direction == MASK_TO_IMAGE)
    gif = None
    if show_trajectory:
        if direction == IMAGE_TO_MASK:
            source = session.image if session.image is not None else result.images[0]
            frames = studio.segmentation_frames(source, steps, solver)
        else:
            frames = result.trajectory
        gif = save_gif(frames, "trajectory")
    gallery = [(image, f"seed {s}") for image, s in zip(result.images, result.seeds)]
    return session.replace(synthesized=tuple(result.images)), gallery, round_trip_report(result), gif


def round_trip_report(result: Synthesis) -> str:
    rows = [f"| {seed} | {check['pixel_agreement']:.1f}% | {check['miou']:.1f} |"
            for seed, check in zip(result.seeds, result.round_trip)]
    return ("Round trip (segment each synthesized image, compare with the mask):\n\n"
            "| seed | pixel agreement | mIoU |\n| --- | --- | --- |\n" + "\n".join(rows))


@user_errors
def save_annotation(editor: dict[str, Any] | None, session: Session, annotator: str | None) -> tuple:
    """Save the photo (or, for a painted layout, the first synthesized image) with the corrected mask."""
    studio = get_studio()
    ids = mask_from_editor(editor, studio.labels)
    session = session or Session()
    image, image_source = session.image_to_save()
    saved = studio.save(image, ids, annotator, session.source, session.steps, image_source)
    ids_path, color_path = save_mask_files(ids, studio.labels, saved.name)
    return f"Saved **{saved.name}** ({studio.count()} annotations in the folder).", ids_path, color_path


@user_errors
def export_mask(editor: dict[str, Any] | None, session: Session) -> tuple[str, str]:
    studio = get_studio()
    ids: np.ndarray = mask_from_editor(editor, studio.labels)
    return save_mask_files(ids, studio.labels, (session.source if session else None) or "mask")


@user_errors
def push_annotations(oauth_token: gr.OAuthToken | None) -> str:
    """Push new annotations with the signed-in visitor's own token (Gradio fills `oauth_token` from the visitor's
    Hugging Face sign-in; None when nobody signed in), or the server's where the operator allowed it."""
    return get_studio().push(oauth_token.token if oauth_token is not None else None)
