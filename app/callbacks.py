"""What the page's events do: component values and the tab's `Session` in, component values out. The work is the
`service`'s; only a person's mistakes reach the browser as sentences (`failures`)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import PIL.Image

from semflow import limits

from . import fill_tools
from .editor import blank_background, editor_value, fill_payload, mask_from_editor
from .errors import InputError
from .exports import save_cvat_zip, save_gif, save_mask_files, save_voc_mask
from .failures import user_errors
from .fill_tools import MAX_FILL_SHARE, Fill, asks_first, changed_share
from .info import model_info_markdown
from .inputs import fit_for_editing
from .model import gpu
from .overlays import DEFAULT_OPACITY, fill_preview, legend_html, mark_corner, overlay, unsure_overlay
from .service import Synthesis, get_studio
from .session import BLANK_LAYOUT, Session
from .work_queue import WORST_FIRST, takes_split

MASK_TO_IMAGE, IMAGE_TO_MASK = "mask → image", "image → mask"  # the trajectory's directions
BETA_STEP = 0.5  # the β slider's step (and how far below its limit it stops)
ANNOTATOR_ID = re.compile(r"[0-9a-f]{32}")  # what a browser keeps as its annotator id (a uuid4 in hex)


def cleared(labels) -> tuple:
    """What new work (a photo, a layout, a queue item) blanks: overlay, legend, gallery, round trip, trajectory, save
    status and the three mask downloads (the order of `fresh` in `ui`), so nothing of the previous work stays."""
    return None, legend_html(None, labels), [], "", None, "", None, None, None


@user_errors
def load_image(upload: dict[str, Any] | None, session: Session) -> tuple[Session, dict[str, Any] | None, str]:
    """A new photo (downscaled for editing when very large) into the editor, with an empty mask layer.

    Wired with ``preprocess=False``: `upload` is the image field's raw value (the uploaded file, which Gradio has
    checked is its own upload, unopened) so that the app's checks, not Gradio's decoder, word what is wrong with it.
    """
    session = session or Session()
    studio = get_studio(session.model)
    if not upload:  # the image was cleared
        return session.restart(), None, "", *cleared(studio.labels)
    if not upload.get("path"):
        raise InputError("Please upload the image as a file (PNG or JPEG).")
    image, notice = studio.open_for_editing(upload["path"])
    if notice:
        gr.Warning(notice)
    session, value = into_editor(session.restart(image=image, source=upload.get("orig_name") or
                                                 Path(upload["path"]).name), image, None, studio.labels)
    return (session, value, notice or f"Loaded a {image.width}x{image.height} image. Press **Segment**.",
            *cleared(studio.labels))


def into_editor(session: Session, background: PIL.Image.Image, ids: np.ndarray | None, labels) -> tuple[Session, dict]:
    """Put `background` with the mask `ids` (None: empty) into the editor: its value (`editor.editor_value`, the only
    maker of it) and the tab's record of what the editor holds, against which every mask read back is checked."""
    session = session.replace(background=background, ids=ids, corner=None, fill=None)
    return session, editor_value(background, ids, labels)


@user_errors
@gpu
def segment(session: Session, steps: Any, solver: Any, opacity: Any, unsure: bool = False,
            progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple:
    """Image → mask: the overlay (or where the model is unsure), the legend, and the prediction as the editor's mask
    layer; a picture far from what the model knows (`Studio.unfamiliar`) is said to be so."""
    if session is None or session.image is None:
        raise InputError("Please upload an image (or pick an example) first.")
    studio = get_studio(session.model)
    studio.check_opacity(opacity)
    ids, steps, confidence = studio.segment(session.image, steps, solver)
    labels = studio.labels
    session, value = into_editor(session.replace(steps=steps, confidence=confidence, prediction=ids), session.image,
                                 ids, labels)
    status = (f"Segmented in {steps} step(s); mean confidence {confidence.mean():.2f}. Correct the mask in the "
              f"editor, then **Synthesize** or **Save**.")
    unfamiliar = studio.unfamiliar(float(confidence.mean()))
    if unfamiliar:
        gr.Warning(unfamiliar)
        status = f"⚠️ **{unfamiliar}** {status}"
    return session, view_of(session, ids, opacity, unsure), legend_of(session, ids, labels), value, status


def view_of(session: Session, ids: np.ndarray | None, opacity: Any, unsure: bool = False) -> PIL.Image.Image | None:
    """The segmentation view: the mask `ids` over the tab's photo, or with `unsure` the heat-map of where the model is
    unsure (pixels corrected by hand are no longer in doubt)."""
    if session is None or session.image is None or ids is None:
        return None
    studio = get_studio(session.model)
    opacity = studio.check_opacity(opacity)
    if unsure and session.confidence is not None and session.confidence.shape == ids.shape:
        settled = ids != session.prediction if session.prediction is not None else None
        return unsure_overlay(session.image, session.confidence, opacity, settled)
    return overlay(session.image, ids, studio.labels, opacity)


@user_errors
def update_overlay(editor: dict[str, Any] | None, session: Session, opacity: Any,
                   unsure: bool = False) -> PIL.Image.Image | None:
    """The segmentation view at another opacity, or switched to or from the heat-map: of the mask as the editor holds
    it now (the tab's last one while the editor is empty)."""
    if session is None or session.background is None:
        return None
    studio = get_studio(session.model)
    has_mask = bool((editor or {}).get("layers"))
    ids = mask_from_editor(editor, session.background, studio.labels) if has_mask else session.ids
    return view_of(session, ids, opacity, unsure)


@user_errors
def blank_layout(width: Any, height: Any, fill: str | None, session: Session) -> tuple:
    """A blank canvas to paint a layout from scratch, filled with one class (or empty); the Image box is emptied (it
    shows what the editor works on)."""
    session = session or Session()
    studio = get_studio(session.model)
    width, height = studio.check_blank_size(width, height)
    class_id = studio.class_id(fill)
    ids = None if class_id is None else np.full((height, width), class_id, np.uint8)
    session, value = into_editor(session.restart(source=BLANK_LAYOUT), blank_background(width, height), ids,
                                 studio.labels)
    return (session, value, f"Blank {width}x{height} layout. Paint classes, then **Synthesize**.",
            *cleared(studio.labels), None)


@user_errors
def load_layout(mask_path: str | None, session: Session) -> tuple:
    """An example layout (a class-id PNG) into the editor, on a blank canvas; the Image box is emptied."""
    session = session or Session()
    studio = get_studio(session.model)
    ids = studio.open_mask(mask_path)
    session, value = into_editor(session.restart(source=Path(mask_path).name if mask_path else "layout"),
                                 blank_background(ids.shape[1], ids.shape[0]), ids, studio.labels)
    return (session, value, "Layout loaded into the editor. Paint over it, then **Synthesize**.",
            *cleared(studio.labels), None)


@user_errors
@gpu
def synthesize(editor: dict[str, Any] | None, session: Session, variants: Any, seed: Any, beta: Any, steps: Any,
               solver: Any, show_trajectory: bool, direction: str,
               progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple:
    """Mask → 1-4 images with a round-trip check each; optionally the trajectory as an animation."""
    session = session or Session()
    studio = get_studio(session.model)
    ids = mask_from_editor(editor, session.background, studio.labels)
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
    session = session or Session()
    studio = get_studio(session.model)
    ids = mask_from_editor(editor, session.background, studio.labels)
    image, image_source = session.image_to_save()
    saved = studio.save(image, ids, annotator, session.source, session.steps, image_source)
    return (f"Saved **{saved.name}** ({studio.count()} annotations in the folder).",
            *mask_downloads(ids, studio.labels, saved.name))


@user_errors
def export_mask(editor: dict[str, Any] | None, session: Session) -> tuple[str, str, str]:
    studio = get_studio(session.model if session else None)
    ids: np.ndarray = mask_from_editor(editor, session.background if session else None, studio.labels)
    return mask_downloads(ids, studio.labels, (session.source if session else None) or "mask")


def mask_downloads(ids: np.ndarray, labels, stem: str) -> tuple[str, str, str]:
    """The mask's downloads: class ids (mode "L"), the colour preview, and a Pascal-VOC palette PNG."""
    return (*save_mask_files(ids, labels, stem), save_voc_mask(ids, labels, stem))


@user_errors
def push_annotations(oauth_token: gr.OAuthToken | None) -> str:
    """Push new annotations with the signed-in visitor's own token (Gradio fills `oauth_token` from the visitor's
    Hugging Face sign-in; None when nobody signed in), or the server's where the operator allowed it."""
    return get_studio().push(oauth_token.token if oauth_token is not None else None)


@user_errors
def choose_model(name: str, session: Session, direction: str = MASK_TO_IMAGE) -> tuple:
    """The tab works with another model from now on (its mask stays): its info, and every synthesis and segmentation
    setting back at this model's defaults (β at the model's own perturbation, within its range, shown only where it
    applies), so nothing of the previous model's settings carries over."""
    studio = get_studio(name)
    session = (session or Session()).replace(model=name)
    config = studio.pipe.config
    return (session, model_info_markdown(studio.model), gr.update(**beta_slider(studio)),
            gr.update(value=config.segmentation_steps), gr.update(value=config.solver),
            gr.update(value=config.synthesis_steps), gr.update(value=config.solver),
            trajectory_caption(name, direction))


def trajectory_caption(model: str | None, direction: str) -> str:
    """What the trajectory animation of `model` (a choice; None: the configured one) shows in `direction`: for the
    paper's formulation the state itself moves between the photo and the mask in anchor colours (its Fig. 7); for the
    symmetric one the part being made starts as Gaussian noise, the other part held at the given end."""
    noisy = get_studio(model).pipe.formulation.uses_noise
    if direction == IMAGE_TO_MASK:
        return ("*Trajectory*: the mask channel, from Gaussian noise to the mask (drawn in the anchor colours), "
                "guided by the photo." if noisy else
                "*Trajectory*: the photo turning into its mask, drawn in the anchor colours (the paper's Fig. 7).")
    return ("*Trajectory*: the image channel, from Gaussian noise to the image, guided by the mask." if noisy else
            "*Trajectory*: the mask, drawn in the anchor colours and perturbed by β, turning into the image (the "
            "paper's Fig. 7).")


def split_field(location: str | None, session: Session) -> dict:
    """The split field, shown only for what takes a split (a Hub dataset id, an imagefolder, a dataset folder), not
    for a plain folder of images."""
    studio = get_studio(session.model if session else None)
    try:
        location = studio.queue_location(location.strip()) if isinstance(location, str) and location.strip() else ""
    except InputError:  # outside the queue folder: the person learns why on opening it
        return gr.update()
    return gr.update(visible=bool(location) and takes_split(location))


def beta_slider(studio) -> dict[str, Any]:
    """The perturbation β slider of `studio`'s model: at the model's own β, up to just below its limit (half the anchor
    spacing, Eq. 14), visible only for models of the paper's formulation trained with one."""
    maximum = studio.beta_limit - BETA_STEP
    return {"value": min(studio.pipe.config.perturbation, maximum), "maximum": maximum, "visible": studio.shows_beta,
            "label": f"Perturbation β (0 to {studio.beta_limit:g}, in 0..255 units; this model was trained with "
                     f"{studio.pipe.config.perturbation:g})"}


# --- the work queue ----------------------------------------------------------------------------------------------


def _queue_of(session: Session, profile: gr.OAuthProfile | None = None):
    """The tab's open queue, after checking who is working on it (`_annotator`)."""
    if session is None or session.queue is None:
        raise InputError("Open a queue first (a folder of images or a Hub dataset id).")
    _annotator(session, profile)
    return get_studio(session.model).queue(*session.queue)


def _annotator(session: Session, profile: gr.OAuthProfile | None) -> str:
    """Who claims and saves queue items: on a Space with Hugging Face sign-in, the signed-in visitor (nobody else may
    write to a queue); elsewhere the browser's own annotator id (`start_tab`), so that a reload, another tab of the
    same browser or a restart of the app keeps one's claims."""
    if get_studio(session.model).settings.oauth:
        if profile is None:
            raise InputError("Sign in with Hugging Face first: work queues record who annotated each item.")
        return profile.username
    return session.owner or uuid.uuid4().hex  # the page had not started yet: an id for this tab only


def start_tab(browser_id: str | None, session: Session) -> tuple[str, Session]:
    """A tab opens: the annotator id its browser keeps (`gr.BrowserState`; a new one the first time) becomes the tab's
    name in the work queues' claims."""
    browser_id = browser_id if isinstance(browser_id, str) and ANNOTATOR_ID.fullmatch(browser_id) else \
        uuid.uuid4().hex
    return browser_id, (session or Session()).replace(owner=browser_id)


def _at_size(ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Class ids brought to `size` (width, height) by nearest neighbour: between a queue item and its editing size."""
    if (ids.shape[1], ids.shape[0]) == tuple(size):
        return ids
    return np.asarray(PIL.Image.fromarray(np.asarray(ids, np.uint8)).resize(size, PIL.Image.Resampling.NEAREST))


def _queue_line(queue, note: str = "") -> str:
    counts = queue.counts()
    by_status = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    return f"{note}**{queue.progress().line}** ({by_status})."


def _show_item(session: Session, queue, claim, note: str = "") -> tuple:
    """The claimed item in the editor (its corrected mask, else its pre-annotation) and in the Image box, with its
    status and mean confidence; or, when there is no other item to open, everything left as it is."""
    studio = get_studio(session.model)
    if claim is None:
        held = " (you still hold this one)" if session.item is not None else ""
        line = _queue_line(queue, f"{note}No other item to open: the rest are finished or held by another "
                                  f"annotator{held}. ")
        return session, gr.update(), line, *[gr.update()] * (2 + len(cleared(studio.labels)))
    opened = queue.open(claim.item.id)
    image, notice = fit_for_editing(opened.image.convert("RGB"), studio.settings.max_edit_side)
    ids = _at_size(opened.mask, image.size) if opened.mask is not None else None
    predicted = _at_size(opened.predicted, image.size) if opened.predicted is not None else None
    session, value = into_editor(session.restart(image=image, source=claim.item.name, item=claim.item.id,
                                                 prediction=predicted), image, ids, studio.labels)
    confidence = "" if opened.confidence is None else f", mean confidence {opened.confidence:.2f}"
    unfamiliar = studio.unfamiliar(opened.confidence) if opened.confidence is not None else None
    line = _queue_line(queue, f"{note}Item {claim.item.index + 1} of {len(queue)}: **{claim.item.name}** "
                              f"({opened.status}{confidence}). " + (f"⚠️ {unfamiliar} " if unfamiliar else ""))
    # The item's mask over its photo (the photo alone before pre-annotation), where the fill tools are clicked.
    view = overlay(image, ids, studio.labels, DEFAULT_OPACITY) if ids is not None else image
    return (session, value, line, notice or "Correct the mask, then **Save mask to queue**.",
            view, legend_of(session, ids, studio.labels), *cleared(studio.labels)[2:], image)


@user_errors
def open_queue(location: str | None, split: str | None, sort: str, session: Session,
               profile: gr.OAuthProfile | None = None) -> tuple:
    """Open a folder or dataset as a queue: worst first, at its least confident unfinished item; in queue order, where
    this annotator stopped (the unfinished item they still hold), else at the first unfinished one."""
    session = session or Session()
    owner = _annotator(session, profile)
    queue = get_studio(session.model).queue(location, split)
    session = session.replace(queue=(location.strip(), (split or "").strip()), owner=owner)
    claim = queue.claim_next(owner, sort=sort) if sort == WORST_FIRST else queue.resume(owner, sort=sort)
    return _show_item(session, queue, claim, "Opened the queue. ")


@user_errors
def reorder_queue(sort: str, session: Session, profile: gr.OAuthProfile | None = None) -> tuple:
    """Another order chosen: the open queue goes to the first unfinished item in it (worst first: the least confident
    one). Nothing happens while no queue is open."""
    if session is None or session.queue is None:
        return session, gr.update(), gr.update(), *[gr.update()] * (2 + len(cleared(get_studio().labels)))
    queue = _queue_of(session, profile)
    return _show_item(session, queue, queue.claim_next(session.owner, sort=sort), f"Order: {sort}. ")


def queue_move(step: int, unfinished: bool):
    """A callback that opens the next (`step` 1) or previous (-1) item in the chosen order, only unfinished ones with
    `unfinished`; past the last item it goes on from the first (and back), so every item can be reached."""

    @user_errors
    def move(sort: str, session: Session, profile: gr.OAuthProfile | None = None) -> tuple:
        queue = _queue_of(session, profile)
        return _show_item(session, queue, queue.claim_next(session.owner, session.item, step, unfinished, sort,
                                                           wrap=True))

    return move


@user_errors
@gpu
def preannotate_queue(session: Session, profile: gr.OAuthProfile | None = None,
                      progress: gr.Progress = gr.Progress()) -> str:
    """Pre-annotate every item of the open queue that has no prediction yet, with a progress bar."""
    queue = _queue_of(session, profile)
    done = get_studio(session.model).preannotate(
        queue, progress=lambda k, total, item: progress((k, total), desc=f"pre-annotating {item.name}"))
    return _queue_line(queue, f"Pre-annotated {done} item(s). ")


@user_errors
def save_to_queue(editor: dict[str, Any] | None, session: Session, profile: gr.OAuthProfile | None = None) -> str:
    """The editor's mask as the corrected mask of the open item (at the item's own size)."""
    queue = _queue_of(session, profile)
    if session.item is None:
        raise InputError("The editor does not hold a queue item: open one with Next or Previous.")
    studio = get_studio(session.model)
    ids = mask_from_editor(editor, session.background, studio.labels)
    ids = _at_size(ids, queue.source.image(queue.item(session.item)).size)
    queue.save(session.item, ids, session.owner)
    return _queue_line(queue, f"Saved the mask of **{queue.item(session.item).name}**. ")


@user_errors
def export_queue(session: Session) -> dict:
    """Every corrected mask of the open queue as a CVAT "Segmentation mask 1.1" zip, ``<queue>_cvat.zip``, in the
    export box (hidden until there is an export)."""
    queue = _queue_of(session)
    masks = [(item.name, ids) for item, ids in queue.corrected_masks()]
    if not masks:
        raise InputError("No item of this queue is corrected yet: save a mask to the queue first.")
    return gr.update(value=save_cvat_zip(masks, get_studio(session.model).labels, queue.source.title), visible=True)


# --- fill tools and edits ----------------------------------------------------------------------------------------

FLOOD, SUPERPIXEL, REPLACE = "flood fill (similar colour)", "superpixel", "replace a class in a box (two clicks)"
FILL_TOOLS = ("off", FLOOD, SUPERPIXEL, REPLACE)
TOOLS = {FLOOD: fill_tools.FLOOD, SUPERPIXEL: fill_tools.SUPERPIXEL, REPLACE: fill_tools.BOX}


@user_errors
def fill_at(editor: dict[str, Any] | None, session: Session, tool: str, class_name: str, replaced_name: str | None,
            tolerance: Any, opacity: Any, unsure: bool, event: gr.SelectData) -> tuple:
    """A click on the segmentation view fills the clicked region of the photo with a class in the editor's mask; for
    the box tool, a first click sets a corner (marked on the view) and a second replaces one class with another inside
    the box. A fill that would change more than `fill_tools.MAX_FILL_SHARE` of the image is shown as a preview and
    waits for **Apply the fill**; any other is applied at once, as one step of the editor's undo history (the page's
    editor script applies the layer it gets).

    Returns: (session, the layer for the editor script or None, the segmentation view, the fill status, the apply
    button)."""
    if tool not in FILL_TOOLS[1:]:
        return session, None, gr.update(), gr.update(), gr.update()
    if session is None or session.image is None:
        raise InputError("Fill tools work on a photo: upload one or open a queue item first.")
    studio = get_studio(session.model)
    class_id = studio.class_id(class_name)
    if class_id is None:
        raise InputError("Choose the class to fill with.")
    x, y = (int(v) for v in event.index)
    replaced = None
    if tool == REPLACE:
        replaced = studio.class_id(replaced_name)
        if replaced is None:
            raise InputError("Choose the class to replace.")
        if session.corner is None:
            session = session.replace(corner=(x, y), fill=None)
            view = view_of(session, session.ids, opacity, unsure)
            return (session, None, mark_corner(view, (x, y)) if view is not None else gr.update(),
                    f"Corner at ({x}, {y}); click the opposite corner of the box.", gr.update(visible=False))
    fill = Fill(TOOLS[tool], (x, y), class_id, limits.whole_number(tolerance, "Tolerance"), replaced, session.corner)
    before = mask_from_editor(editor, session.background, studio.labels)
    after = fill.apply(before, np.asarray(session.image.convert("RGB")))
    session = session.replace(corner=None)
    if asks_first(before, after):
        share = changed_share(before, after)
        return (session.replace(fill=fill), None,
                fill_preview(session.image, before, after, studio.labels, studio.check_opacity(opacity)),
                f"This fill at ({x}, {y}) would change {share:.1%} of the image (more than {MAX_FILL_SHARE:.0%}); the "
                f"view shows it (the rest dimmed). **Apply the fill** to make it, or click elsewhere"
                + (", or lower the tolerance." if fill.tool == fill_tools.FLOOD else "."),
                gr.update(visible=True))
    return _filled(session, studio, before, after, fill, opacity, unsure)


@user_errors
def apply_fill(editor: dict[str, Any] | None, session: Session, opacity: Any, unsure: bool) -> tuple:
    """Make the previewed fill, on the editor's mask as it is now (strokes painted since the preview included)."""
    if session is None or session.fill is None or session.image is None:
        raise InputError("There is no fill waiting: click on the segmentation view with a fill tool first.")
    studio = get_studio(session.model)
    before = mask_from_editor(editor, session.background, studio.labels)
    after = session.fill.apply(before, np.asarray(session.image.convert("RGB")))
    return _filled(session, studio, before, after, session.fill, opacity, unsure)


def _filled(session: Session, studio, before: np.ndarray, after: np.ndarray, fill: Fill, opacity: Any,
            unsure: bool) -> tuple:
    """A fill made: the new layer for the editor script, the view and the legend of the mask after it."""
    session = session.replace(ids=after, fill=None)
    name = studio.labels.class_names[fill.class_id]
    x, y = fill.point
    if fill.tool == fill_tools.BOX:
        (x0, y0) = fill.corner
        note = f"Replaced {studio.labels.class_names[fill.replaced]} with {name} in the box ({x0}, {y0})–({x}, {y})"
    elif fill.tool == fill_tools.FLOOD:
        note = f"Flood-filled the region at ({x}, {y}) with {name}"
    else:
        note = f"Filled the superpixel at ({x}, {y}) with {name}"
    note += f" ({changed_share(before, after):.1%} of the image changed; undo with z or the editor's undo)."
    return (session, fill_payload(session.background, after, studio.labels), view_of(session, after, opacity, unsure),
            note, gr.update(visible=False))


@user_errors
def mask_changed(editor: dict[str, Any] | None, session: Session, opacity: Any, unsure: bool) -> tuple:
    """The editor's mask changed in the browser (a stroke, a fill, undo, redo): the segmentation view and the legend
    follow it. (view, legend) — the tab's session is left alone, so that this event, which the page sends on its own,
    never writes back an older session over a newer one."""
    if session is None or session.background is None:
        return gr.update(), gr.update()
    studio = get_studio(session.model)
    try:
        ids = mask_from_editor(editor, session.background, studio.labels)
    except InputError:  # the editor is between two pieces of work; the person's next action says what is wrong
        return gr.update(), gr.update()
    return view_of(session, ids, opacity, unsure), legend_of(session, ids, studio.labels)


def legend_of(session: Session, ids: np.ndarray | None, labels) -> str:
    """The legend of the mask `ids` of the tab's photo: each class's share, and how much of the model's prediction a
    person has corrected, with the model's mean confidence where the prediction still stands."""
    if ids is None:
        return legend_html(None, labels)
    note = None
    if session.prediction is not None and session.prediction.shape == ids.shape:
        kept = ids == session.prediction
        note = f"Corrected by hand: {1 - kept.mean():.1%} of the image."
        if session.confidence is not None and kept.any():
            note += f" Mean confidence where the model's mask stands: {session.confidence[kept].mean():.2f}."
    return legend_html(ids, labels, note)
