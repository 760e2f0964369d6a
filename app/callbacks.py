"""What the page's events do: component values and the tab's `Session` in, a view (`views`) out. `Page` is built on
the process's `Studios` and asks it for the studio of the tab's model (the model's work) and for the workspace (the
annotation side); only a person's mistakes reach the browser as sentences (`failures`)."""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
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
from .exports import save_gif, save_mask_files, save_voc_mask
from .failures import queue_errors, user_errors
from .fields import number
from .fill_tools import MAX_FILL_SHARE, Fill, asks_first, changed_share
from .info import model_info_markdown
from .learning import Learning
from .model import gpu
from .overlays import DEFAULT_OPACITY, edit_region_view, fill_preview, legend_html, mark_corner
from .queue_words import ALL, DECISION_NAMES, SORT_NAMES, STATUS_NAMES, counts_line, progress_line
from .service import EDIT_MARGIN, EDIT_STRENGTH, Studio, Studios
from .session import BLANK_LAYOUT, MADE_BY, Session
from .text_fields import clean_text
from .views import (
    KEEP,
    ClaimsListed,
    EditOffer,
    Filled,
    Learned,
    MaskFiles,
    MaskFollowed,
    ModelChosen,
    QueueExport,
    QueueNote,
    Saved,
    Segmented,
    Synthesized,
    TabStarted,
    Work,
    results_cleared,
)
from .work_queue import STATUSES, AnnotatorStats, Progress, Review, Version
from .workspace import Person, QueueStop, Workspace, at_size

logger = logging.getLogger(__name__)
MASK_TO_IMAGE, IMAGE_TO_MASK = "mask → image", "image → mask"  # the trajectory's directions
BETA_STEP = 0.5  # the β slider's step (and how far below its limit it stops)
ANNOTATOR_ID = re.compile(r"[0-9a-f]{32}")  # what a browser keeps as its annotator id (a uuid4 in hex)
FLOOD, SUPERPIXEL, REPLACE = "flood fill (similar colour)", "superpixel", "replace a class in a box (two clicks)"
FILL_TOOLS = ("off", FLOOD, SUPERPIXEL, REPLACE)
TOOLS = {FLOOD: fill_tools.FLOOD, SUPERPIXEL: fill_tools.SUPERPIXEL, REPLACE: fill_tools.BOX}
EXPORT_CVAT, EXPORT_DATASET = "CVAT zip", "Hugging Face dataset zip"  # what a queue exports as
EXPORTS = (EXPORT_CVAT, EXPORT_DATASET)
LEARN_ACCEPTED, LEARN_CORRECTED = "accepted", "corrected"  # what a learning job learns from
LEARN_FROM = [("the accepted items", LEARN_ACCEPTED), ("every corrected item (corrected, submitted, accepted)",
                                                         LEARN_CORRECTED)]


def _warning(message: str) -> str:
    """What an event that sets the queue's status line shows when it fails: the sentence itself."""
    return message


def _unchanged(message: str) -> Any:
    """What an event that sets a picture shows when it fails: nothing new (the warning says why)."""
    return gr.update()


class Page:
    """The page's event functions, on `studios` (each tab's work goes to the studio of the model it picked)."""

    def __init__(self, studios: Studios) -> None:
        self.studios = studios

    @property
    def workspace(self) -> Workspace:
        """The process's annotation wing: queues, the store, pushes (whatever model a tab uses)."""
        return self.studios.workspace

    def studio(self, session: Session | None = None) -> Studio:
        return self.studios.get(session.model if session is not None else None)

    # --- photos, layouts and the model ------------------------------------------------------------------------------

    @user_errors
    def load_example_photo(self, upload: dict[str, Any] | None, session: Session) -> Work:
        """An example photo into the editor (`load_image`), recorded as an example when saved."""
        return self.load_image(upload, session, origin="example")

    @user_errors
    def load_image(self, upload: dict[str, Any] | None, session: Session, origin: str = "upload") -> Work:
        """A new photo (downscaled for editing when very large) into the editor, with an empty mask layer.

        Wired with ``preprocess=False``: `upload` is the image field's raw value (the uploaded file, which Gradio has
        checked is its own upload, unopened) so that the app's checks, not Gradio's decoder, word what is wrong with
        it."""
        session = session or Session()
        studio = self.studio(session)
        if not upload:  # the image was cleared
            return Work(session.restart(), None, "").cleared(studio.labels)
        if not upload.get("path"):
            raise InputError("Please upload the image as a file (PNG or JPEG).")
        image, notice = studio.open_for_editing(upload["path"])
        if notice:
            gr.Warning(notice)
        session, value = into_editor(session.restart(image=image, origin=origin, source=upload.get("orig_name") or
                                                     Path(upload["path"]).name), image, None, studio.labels)
        status = notice or f"Loaded a {image.width}x{image.height} image. Press **Segment**."
        return Work(session, value, status).cleared(studio.labels)

    @user_errors
    @gpu
    def segment(self, session: Session, steps: Any, solver: Any, opacity: Any, unsure: bool = False,
                progress: gr.Progress = gr.Progress(track_tqdm=True)) -> Segmented:
        """Image → mask: the overlay (or where the model is unsure), the legend, and the prediction as the editor's
        mask layer; a picture far from what the model knows (`Studio.unfamiliar`) is said to be so."""
        if session is None or session.image is None:
            raise InputError("Please upload an image (or pick an example) first.")
        studio = self.studio(session)
        ids, steps, confidence = studio.segment(session.image, number(steps, "Steps", whole=True), solver)
        session, value = into_editor(session.replace(steps=steps, confidence=confidence, prediction=ids,
                                                     made_by=studio.model.identity(),
                                                     started_from=studio.identity), session.image, ids, studio.labels)
        view = self.view_of(session, ids, opacity, unsure)
        status = (f"Segmented in {steps} step(s); mean confidence {confidence.mean():.2f}. Correct the mask in the "
                  f"editor, then **Synthesize** or **Save**.")
        unfamiliar = studio.unfamiliar(float(confidence.mean()))
        if unfamiliar:
            gr.Warning(unfamiliar)
            status = f"⚠️ **{unfamiliar}** {status}"
        return Segmented(session, view, legend_of(session, ids, studio.labels), value, status,
                         **results_cleared(), **EditOffer.withdrawn())  # the mask it replaces goes with its results

    def view_of(self, session: Session, ids: np.ndarray | None, opacity: Any,
                unsure: bool = False) -> PIL.Image.Image | None:
        """The segmentation view: the mask `ids` over the tab's photo, or with `unsure` the heat-map of where the
        model is unsure (pixels corrected by hand are no longer in doubt)."""
        if session is None or session.image is None or ids is None:
            return None
        studio = self.studio(session)
        if unsure and session.confidence is not None and session.confidence.shape == ids.shape:
            settled = ids != session.prediction if session.prediction is not None else None
            return studio.view(session.image, ids, opacity, session.confidence, settled)
        return studio.view(session.image, ids, opacity)

    @user_errors
    def update_overlay(self, editor: dict[str, Any] | None, session: Session, opacity: Any,
                       unsure: bool = False) -> PIL.Image.Image | None:
        """The segmentation view at another opacity, or switched to or from the heat-map: of the mask as the editor
        holds it now (the tab's last one while the editor is empty)."""
        if session is None or session.background is None:
            return None
        studio = self.studio(session)
        has_mask = bool((editor or {}).get("layers"))
        ids = mask_from_editor(editor, session.background, studio.labels) if has_mask else session.ids
        return self.view_of(session, ids, opacity, unsure)

    @user_errors
    def blank_layout(self, width: Any, height: Any, fill: str | None, session: Session) -> Work:
        """A blank canvas to paint a layout from scratch, filled with one class (or empty); the Image box is emptied
        (it shows what the editor works on)."""
        session = session or Session()
        studio = self.studio(session)
        width, height = studio.check_blank_size(width, height)
        class_id = studio.class_id(fill)
        ids = None if class_id is None else np.full((height, width), class_id, np.uint8)
        session, value = into_editor(session.restart(source=BLANK_LAYOUT), blank_background(width, height), ids,
                                     studio.labels)
        return Work(session, value, f"Blank {width}x{height} layout. Paint classes, then **Synthesize**.",
                    image=None).cleared(studio.labels)

    @user_errors
    def load_layout(self, mask_path: str | None, session: Session) -> Work:
        """An example layout (a class-id PNG) into the editor, on a blank canvas; the Image box is emptied."""
        session = session or Session()
        studio = self.studio(session)
        ids = studio.open_mask(mask_path)
        session, value = into_editor(session.restart(source=Path(mask_path).name if mask_path else "layout"),
                                     blank_background(ids.shape[1], ids.shape[0]), ids, studio.labels)
        return Work(session, value, "Layout loaded into the editor. Paint over it, then **Synthesize**.",
                    image=None).cleared(studio.labels)

    @user_errors
    @gpu
    def synthesize(self, editor: dict[str, Any] | None, session: Session, variants: Any, seed: Any, beta: Any,
                   steps: Any, solver: Any, show_trajectory: bool, direction: str,
                   progress: gr.Progress = gr.Progress(track_tqdm=True)) -> Synthesized:
        """Mask → 1-4 images with a round-trip check each; optionally the trajectory as an animation. Every result
        names the model that made it (the tab may have switched models meanwhile)."""
        session = session or Session()
        studio = self.studio(session)
        ids = mask_from_editor(editor, session.background, studio.labels)
        steps = number(steps, "Steps", whole=True)  # a field the page always fills: empty is a mistake, not "default"
        result = studio.synthesize(ids, variants, seed, beta, steps, solver,
                                   trajectory=show_trajectory and direction == MASK_TO_IMAGE)
        gif, caption = None, KEEP  # without a trajectory, the caption follows the tab's model (`trajectory_caption`)
        if show_trajectory:
            if direction == IMAGE_TO_MASK:
                source = session.image if session.image is not None else result.images[0]
                frames = studio.segmentation_frames(source, steps, solver)
            else:
                frames = result.trajectory
            gif = save_gif(frames, "trajectory")
            caption = self.trajectory_caption(session.model, direction, made_by=studio.model.name)
        name = studio.model.name
        gallery = [(image, f"seed {s} · {name}") for image, s in zip(result.images, result.seeds)]
        for image in result.images:  # a painted layout saved with its synthesis names the model that made it
            image.info[MADE_BY] = studio.model.identity()
        return Synthesized(gallery, round_trip_report(result.seeds, result.round_trip, model=name), gif, caption,
                           tuple(result.images))

    @user_errors
    @gpu
    def edit_photo(self, editor: dict[str, Any] | None, session: Session, variants: Any, seed: Any, beta: Any,
                   steps: Any, solver: Any, margin: Any, strength: Any,
                   progress: gr.Progress = gr.Progress(track_tqdm=True)) -> Synthesized:
        """The segmented photo with only what was changed in its mask re-synthesized (1-4 variants), each checked by
        segmenting it again on the changed pixels."""
        if session is None or session.image is None or session.prediction is None:
            raise InputError("Edit this photo works on a segmented photo: upload one (or pick an example), press "
                             "**Segment**, change its mask, then edit.")
        studio = self.studio(session)
        ids = mask_from_editor(editor, session.background, studio.labels)
        result = studio.edit(session.image, ids, ids != session.prediction, variants, seed, margin, strength, beta,
                             number(steps, "Steps", whole=True), solver)
        name = studio.model.name
        gallery = [(image, f"edit, seed {s} · {name}") for image, s in zip(result.images, result.seeds)]
        changed = f"the {int(result.changed.sum())} changed pixels, {result.changed.mean():.1%} of the photo"
        return Synthesized(gallery, round_trip_report(result.seeds, result.round_trip, changed, name), None)

    @user_errors
    def edit_preview(self, editor: dict[str, Any] | None, session: Session, margin: Any,
                     strength: Any) -> EditOffer:
        """The region the edit would change, at another margin or strength."""
        if session is None or session.background is None:
            return EditOffer()
        studio = self.studio(session)
        return EditOffer(**self.edit_offer(session, mask_from_editor(editor, session.background, studio.labels),
                                           margin, strength))

    def edit_offer(self, session: Session, ids: np.ndarray, margin: Any, strength: Any) -> dict[str, Any]:
        """`EditOffer`'s fields for the mask `ids` in the editor: offered where it is a segmented photo's mask with a
        change, with the region the edit would change (the whole photo with a strength above 0); else withdrawn."""
        prediction = session.prediction
        if session.image is None or prediction is None or prediction.shape != ids.shape or \
                not (changed := ids != prediction).any():
            return EditOffer.withdrawn()
        region = self.studio(session).edit_region(changed, margin, strength)
        return {"edit_button": gr.update(visible=True), "edit_options": gr.update(visible=True),
                "edit_region": edit_region_view(session.image, region)}

    @user_errors
    def save_annotation(self, editor: dict[str, Any] | None, session: Session, annotator: str | None,
                        synthesized: tuple[PIL.Image.Image, ...] = ()) -> Saved:
        """Save the photo (or, for a painted layout, the first image `synthesized` from it) with the corrected
        mask."""
        session = session or Session()
        studio = self.studio(session)
        ids = mask_from_editor(editor, session.background, studio.labels)
        image, image_source = session.image_to_save(synthesized or ())
        made_by = image.info.get(MADE_BY) if image_source == "synthesized" else session.made_by
        queue = {"queue_item": f"{session.queue[0]} {session.item}"} if image_source == "queue" and session.queue \
            else {}
        saved = studio.save(image, ids, annotator, session.source, session.steps, image_source,
                            made_by=made_by or {"model": None, "model_revision": None}, **queue)
        files = mask_downloads(ids, studio.labels, saved.name)
        return Saved(files.mask_ids_file, files.mask_color_file, files.mask_voc_file,
                     f"Saved **{saved.name}** ({studio.count()} annotations in the folder).")

    @user_errors
    def export_mask(self, editor: dict[str, Any] | None, session: Session) -> MaskFiles:
        studio = self.studio(session)
        ids: np.ndarray = mask_from_editor(editor, session.background if session else None, studio.labels)
        return mask_downloads(ids, studio.labels, (session.source if session else None) or "mask")

    @user_errors
    def push_annotations(self, oauth_token: gr.OAuthToken | None) -> str:
        """Push new annotations with the signed-in visitor's own token (Gradio fills `oauth_token` from the visitor's
        Hugging Face sign-in; None when nobody signed in), or the server's where the operator allowed it."""
        return self.workspace.push_photos(oauth_token.token if oauth_token is not None else None)

    @user_errors
    def choose_model(self, name: str, session: Session, direction: str = MASK_TO_IMAGE,
                     shown: Any = None) -> ModelChosen:
        """The tab works with another model from now on (its mask stays): its info, and every synthesis and
        segmentation setting back at this model's defaults (β at the model's own perturbation, within its range,
        shown only where it applies), so nothing of the previous model's settings carries over. Results already on
        the page keep the captions of the model that made them (a trajectory `shown` keeps its own)."""
        studio = self.studios.get(name)
        session = (session or Session()).replace(model=name)
        config = studio.pipe.config
        return ModelChosen(session, model_info_markdown(studio.model), gr.update(**beta_slider(studio)),
                           gr.update(value=config.segmentation_steps), gr.update(value=config.solver),
                           gr.update(value=config.synthesis_steps), gr.update(value=config.solver),
                           self.caption_of_page(name, direction, shown))

    def caption_of_page(self, model: str | None, direction: str, shown: Any = None) -> Any:
        """The trajectory caption as the page should show it: while a trajectory is `shown` its own caption (it names
        the model that made it) stays; otherwise what a trajectory of `model` in `direction` will show."""
        return gr.update() if shown else self.trajectory_caption(model, direction)

    def trajectory_caption(self, model: str | None, direction: str, made_by: str | None = None) -> str:
        """What the trajectory animation of `model` (a choice; None: the configured one) shows in `direction`: for
        the paper's formulation the state itself moves between the photo and the mask in anchor colours (its Fig. 7);
        for the symmetric one the part being made starts as Gaussian noise, the other part held at the given end.
        `made_by` names the model that made the trajectory shown."""
        noisy = self.studios.get(model).pipe.formulation.uses_noise
        if direction == IMAGE_TO_MASK:
            what = ("the mask channel, from Gaussian noise to the mask (drawn in the anchor colours), guided by the "
                    "photo." if noisy else
                    "the photo turning into its mask, drawn in the anchor colours (the paper's Fig. 7).")
        else:
            what = ("the image channel, from Gaussian noise to the image, guided by the mask." if noisy else
                    "the mask, drawn in the anchor colours and perturbed by β, turning into the image (the paper's "
                    "Fig. 7).")
        return f"*Trajectory*{f' made by `{made_by}`' if made_by else ''}: {what}"

    def restore_image(self, session: Session) -> PIL.Image.Image | None:
        """The Image box back at what the editor works on (after an upload that could not be opened, so that no
        broken image stays in it): the tab's photo, or nothing for a layout."""
        return session.image if session is not None else None

    # --- the work queue ---------------------------------------------------------------------------------------------

    def split_field(self, location: str | None, session: Session) -> dict:
        """The split field, shown only for what takes a split (a Hub dataset id, an imagefolder, a dataset folder),
        not for a plain folder of images."""
        takes = self.workspace.takes_split(location)
        return gr.update() if takes is None else gr.update(visible=takes)  # None: the person learns why on opening

    def start_tab(self, browser_id: str | None, session: Session) -> TabStarted:
        """A tab opens: the annotator id its browser keeps (`gr.BrowserState`; a new one the first time) becomes the
        tab's key in the work queues' claims."""
        browser_id = browser_id if isinstance(browser_id, str) and ANNOTATOR_ID.fullmatch(browser_id) else \
            uuid.uuid4().hex
        learned = self.learning_tick(session, model_info=True)
        return TabStarted(browser_id, (session or Session()).replace(owner=browser_id), learned.learn_status,
                          learned.learn_timer, learned.model_info)

    def _person(self, session: Session, name: str | None, profile: gr.OAuthProfile | None) -> Person:
        """Who works on a queue: on a Space with Hugging Face sign-in, the signed-in visitor (nobody else may write to
        a queue); elsewhere the browser's own annotator id (`start_tab`), so that a reload, another tab of the same
        browser or a restart of the app keeps one's claims, with the name typed in *Your name*."""
        if self.studios.settings.oauth:
            if profile is None:
                raise InputError("Sign in with Hugging Face first: work queues record who annotated each item.")
            return Person(profile.username, profile.username)
        return Person(session.owner or uuid.uuid4().hex, clean_text(name, 100) or None)

    def _open_queue_of(self, session: Session) -> tuple[str, str]:
        """The tab's open queue as (location, split)."""
        if session is None or session.queue is None:
            raise InputError("Open a queue first (a folder of images or a Hub dataset id).")
        return session.queue

    def _show_item(self, session: Session, stop: QueueStop, note: str = "") -> Work:
        """The claimed item in the editor (its current version, else its pre-annotation) and in the Image box, with
        its status, mean confidence, the reviewer's comment when it was rejected, and its history; or, when there is
        no other item to open, everything left as it is."""
        studio = self.studio(session)
        if stop.skipped:
            note += f"Skipped {len(stop.skipped)} item(s) whose image cannot be read ({', '.join(stop.skipped[:3])}). "
        if stop.item is None:
            held = " (you still hold this one)" if session.item is not None else ""
            return Work(session, queue_status=queue_line(stop, f"{note}No other item to open: the rest are finished, "
                                                               f"skipped or held by another annotator{held}. "))
        if stop.version is not None:
            started_from = f"version {stop.version}"
        else:
            started_from = stop.prediction_model if stop.predicted is not None else None
        made_by = _identity(stop.prediction_model) if stop.predicted is not None else None
        session, value = into_editor(session.restart(image=stop.image, source=stop.item.name, item=stop.item.id,
                                                     prediction=stop.predicted, origin="queue", made_by=made_by,
                                                     started_from=started_from, opened_at=time.time()),
                                     stop.image, stop.mask, studio.labels)
        confidence = "" if stop.confidence is None else f", mean confidence {stop.confidence:.2f}"
        if stop.version is None and stop.predicted is not None and stop.prediction_model:
            confidence += f", predicted by {stop.prediction_model.partition('@')[0]}"  # what the editor holds
        version = "" if stop.version is None else f", version {stop.version}"
        unfamiliar = studio.unfamiliar(stop.confidence) if stop.confidence is not None else None
        line = queue_line(stop, f"{note}Item {stop.item.index + 1} of {stop.progress.total}: **{stop.item.name}** "
                                f"({STATUS_NAMES[stop.status]}{confidence}{version}). "
                                + (f"⚠️ **Rejected: {stop.comment}** Correct it, save, then submit again. "
                                   if stop.comment else "")
                                + (f"⚠️ {unfamiliar} " if unfamiliar else ""))
        # The item's mask over its photo (the photo alone before pre-annotation), where the fill tools are clicked.
        view = studio.view(stop.image, stop.mask, DEFAULT_OPACITY) if stop.mask is not None else stop.image
        history, versions = self._history(session)
        return Work(session, value, stop.notice or "Correct the mask, then **Save mask to queue**.", line, stop.image,
                    view, legend_of(session, stop.mask, studio.labels), history=history,
                    versions=versions).cleared(studio.labels)

    @queue_errors(Work.note)
    def open_queue(self, location: str | None, split: str | None, sort: str, session: Session,
                   name: str | None = None, status: str = ALL, profile: gr.OAuthProfile | None = None) -> Work:
        """Open a folder or dataset as a queue: with a status filter, at its first such item; worst first, at its least
        confident unfinished item; in queue order, where this annotator stopped (the unfinished item they still hold,
        or their work a reviewer sent back), else at the first unfinished one."""
        session = session or Session()
        person = self._person(session, name, profile)
        stop = self.workspace.open_queue(location, split, person, sort, _status(status))
        session = session.replace(queue=(location.strip(), (split or "").strip()), owner=person.key)
        return self._show_item(session, stop, "Opened the queue. ")

    @queue_errors(Work.note)
    def reorder_queue(self, sort: str, session: Session, name: str | None = None, status: str = ALL,
                      profile: gr.OAuthProfile | None = None) -> Work:
        """Another order or filter chosen: the open queue goes to the first item in it (worst first: the least
        confident unfinished one; with a filter, the first of that status). Nothing happens while no queue is open."""
        if session is None or session.queue is None:
            return Work(session)
        person = self._person(session, name, profile)
        filtered = _status(status)
        stop = self.workspace.move(*self._open_queue_of(session), person, None, unfinished=filtered is None,
                                   sort=sort, status=filtered)
        shown = f"Order: {SORT_NAMES[sort]}" + (f", only {STATUS_NAMES[filtered]} items" if filtered else "")
        return self._show_item(session, stop, f"{shown}. ")

    def queue_move(self, step: int, unfinished: bool):
        """A callback that opens the next (`step` 1) or previous (-1) item in the chosen order (only those of the
        status filter), only unfinished ones with `unfinished`; past the last item it goes on from the first (and
        back), so every item can be reached."""

        @queue_errors(Work.note)
        def move(sort: str, session: Session, name: str | None = None, status: str = ALL,
                 profile: gr.OAuthProfile | None = None) -> Work:
            person = self._person(session, name, profile)
            location, split = self._open_queue_of(session)
            filtered = _status(status)
            stop = self.workspace.move(location, split, person, session.item, step, unfinished and filtered is None,
                                       sort, wrap=True, status=filtered)
            return self._show_item(session, stop)

        return move

    @queue_errors(_warning)
    @gpu
    def preannotate_queue(self, session: Session, name: str | None = None, profile: gr.OAuthProfile | None = None,
                          progress: gr.Progress = gr.Progress()) -> str:
        """Pre-annotate every item of the open queue that has no prediction yet, with a progress bar; unreadable items
        are marked and skipped."""
        self._person(session, name, profile)
        location, split = self._open_queue_of(session)
        done, queue_progress = self.studio(session).preannotate(
            location, split, progress=lambda k, total, item: progress((k, total), desc=f"pre-annotating {item.name}"))
        return queue_line(queue_progress, f"Pre-annotated {done} item(s). ")

    @queue_errors(QueueNote.of)
    def save_to_queue(self, editor: dict[str, Any] | None, session: Session, name: str | None = None,
                      profile: gr.OAuthProfile | None = None) -> QueueNote:
        """The editor's mask as the open item's new version (at the item's own size), recording who, what it started
        from and the seconds spent since the item was opened (or last saved)."""
        person = self._person(session, name, profile)
        location, split = self._open_queue_of(session)
        ids = mask_from_editor(editor, session.background, self.studio(session).labels)
        version = self.workspace.save(location, split, person, session.item, ids, session.started_from,
                                      _seconds(session))
        session = session.replace(started_from=f"version {version.number}", opened_at=time.time(), ids=ids)
        item = self.workspace.queue(location, split).item(session.item)
        return self._note(session, f"Saved the mask of **{item.name}** as version {version.number}. ")

    @queue_errors(QueueNote.of)
    def submit_item(self, session: Session, name: str | None = None,
                    profile: gr.OAuthProfile | None = None) -> QueueNote:
        """Hand the open item's saved mask to the reviewers."""
        person = self._person(session, name, profile)
        location, split = self._open_queue_of(session)
        self.workspace.submit(location, split, person, session.item)
        item = self.workspace.queue(location, split).item(session.item)
        return self._note(session, f"Submitted **{item.name}** for review. ")

    @queue_errors(QueueNote.of)
    def accept_item(self, session: Session, name: str | None = None,
                    profile: gr.OAuthProfile | None = None) -> QueueNote:
        """A reviewer accepts the open item's current version as it is."""
        person = self._person(session, name, profile)
        location, split = self._open_queue_of(session)
        self.workspace.accept(location, split, person, session.item)
        item = self.workspace.queue(location, split).item(session.item)
        return self._note(session, f"Accepted **{item.name}**. ")

    @queue_errors(QueueNote.of)
    def correct_item(self, editor: dict[str, Any] | None, session: Session, name: str | None = None,
                     profile: gr.OAuthProfile | None = None) -> QueueNote:
        """A reviewer saves the editor's mask as their correction of the open item (a new version), accepted."""
        person = self._person(session, name, profile)
        location, split = self._open_queue_of(session)
        ids = mask_from_editor(editor, session.background, self.studio(session).labels)
        version = self.workspace.save(location, split, person, session.item, ids, session.started_from,
                                      _seconds(session), review=True)
        session = session.replace(started_from=f"version {version.number}", opened_at=time.time(), ids=ids)
        item = self.workspace.queue(location, split).item(session.item)
        return self._note(session, f"Corrected **{item.name}** (version {version.number}) and accepted it. ")

    @queue_errors(QueueNote.of)
    def reject_item(self, comment: str | None, session: Session, name: str | None = None,
                    profile: gr.OAuthProfile | None = None) -> QueueNote:
        """A reviewer sends the open item back to its annotator with what to fix."""
        person = self._person(session, name, profile)
        location, split = self._open_queue_of(session)
        self.workspace.reject(location, split, person, session.item, comment)
        item = self.workspace.queue(location, split).item(session.item)
        return self._note(session, f"Rejected **{item.name}**: it goes back to its annotator with your comment. ")

    @queue_errors(ClaimsListed.of)
    def list_claims(self, session: Session) -> ClaimsListed:
        """The live claims of the open queue, for a reviewer to release one: (item and holder, item id) choices."""
        location, split = self._open_queue_of(session)
        claims = self.workspace.claims(location, split)
        choices = [(f"{claim.item.name}: {claim.who}", claim.item.id) for claim in claims]
        note = f"{len(claims)} item(s) claimed now. " if claims else "Nobody holds an item of this queue now. "
        return ClaimsListed(claimed=gr.update(choices=choices, value=choices[0][1] if choices else None),
                            queue_status=queue_line(self.workspace.progress(location, split), note))

    @queue_errors(_warning)
    def release_claim(self, item_id: str | None, session: Session, name: str | None = None,
                      profile: gr.OAuthProfile | None = None) -> str:
        """A reviewer releases whoever's claim is on an item (a tab left open on it, an annotator gone home)."""
        person = self._person(session, name, profile)
        location, split = self._open_queue_of(session)
        if not item_id:
            raise InputError("Choose a claimed item to release (press **Show claims** to list them).")
        released = self.workspace.release(location, split, person, item_id)
        item = self.workspace.queue(location, split).item(item_id)
        return queue_line(self.workspace.progress(location, split),
                          f"Released the claim on **{item.name}**. " if released else
                          f"Nobody holds **{item.name}** any more. ")

    def renew_claim(self, session: Session) -> Any:
        """Every `RENEW_SECONDS` while the tab is open: renew its lease on the item it shows, so that the claim lapses
        only about a minute after the tab closes. Says so when the item was taken by someone else meanwhile."""
        if session is None or session.queue is None or session.item is None or not session.owner:
            return gr.update()
        try:
            if self.workspace.renew(*session.queue, Person(session.owner), session.item) is not None:
                return gr.update()
            holder = self.workspace.holder(*session.queue, session.item)
        except Exception as error:  # the next renewal tries again; a save would say what is wrong
            logger.warning("renewing a claim failed: %r", error)
            return gr.update()
        if holder is None or holder.owner == session.owner:
            return gr.update()
        return (f"⚠️ Your claim on this item lapsed and **{holder.who}** holds it now: saving it would be refused. "
                f"Open another item.")

    def _history(self, session: Session) -> tuple[str, dict]:
        """The open item's versions and reviews as a table, and the version menu."""
        versions, reviews = self.workspace.history(*session.queue, session.item)
        if not versions and not reviews:
            return "*No saved version yet.*", gr.update(choices=[], value=None)
        return history_table(versions, reviews), gr.update(choices=[(f"version {v.number}", v.number)
                                                                    for v in reversed(versions)],
                                                           value=versions[-1].number if versions else None)

    def _note(self, session: Session, note: str) -> QueueNote:
        history, versions = self._history(session)
        return QueueNote(session=session, queue_status=queue_line(self.workspace.progress(*session.queue), note),
                         history=history, versions=versions)

    @queue_errors(QueueNote.of)
    def show_history(self, session: Session) -> QueueNote:
        """The open item's history, read again."""
        self._open_queue_of(session)
        if session.item is None:
            raise InputError("Open a queue item first.")
        history, versions = self._history(session)
        return QueueNote(session=session, history=history, versions=versions)

    @queue_errors(_unchanged)
    def show_version(self, number: Any, session: Session, opacity: Any) -> Any:
        """One version of the open item over its photo, in the segmentation view (the editor is left as it is)."""
        location, split = self._open_queue_of(session)
        if number is None:
            raise InputError("Choose a version to show.")
        ids = at_size(self.workspace.version(location, split, session.item, number), session.image.size)
        return self.studio(session).view(session.image, ids, opacity)

    @queue_errors(Work.note)
    def restore_version(self, number: Any, session: Session, name: str | None = None,
                        profile: gr.OAuthProfile | None = None) -> Work:
        """Make an earlier version the item's mask again (a new version: nothing is overwritten), into the editor."""
        person = self._person(session, name, profile)
        location, split = self._open_queue_of(session)
        if number is None:
            raise InputError("Choose a version to restore.")
        version = self.workspace.restore(location, split, person, session.item, number, _seconds(session))
        studio = self.studio(session)
        ids = at_size(self.workspace.version(location, split, session.item, version.number), session.image.size)
        session, value = into_editor(session.replace(started_from=f"version {version.number}",
                                                     opened_at=time.time()), session.image, ids, studio.labels)
        history, versions = self._history(session)
        note = f"Restored version {int(number)} as version {version.number}. "
        return Work(session, value, queue_status=queue_line(self.workspace.progress(location, split), note),
                    overlay_view=studio.view(session.image, ids, DEFAULT_OPACITY),
                    legend=legend_of(session, ids, studio.labels), history=history, versions=versions)

    @queue_errors(QueueExport.of)
    def export_queue(self, kind: str, accepted_only: bool, session: Session) -> QueueExport:
        """The open queue's accepted items (every finished one when `accepted_only` is off) as a CVAT "Segmentation
        mask 1.1" zip or a Hugging Face dataset zip, named after the queue, in the export box (hidden until there is
        an export)."""
        location, split = self._open_queue_of(session)
        labels = self.studio(session).labels
        if kind == EXPORT_DATASET:
            path = self.workspace.export_dataset(location, split, labels, accepted_only)
        else:
            path = self.workspace.export_cvat(location, split, labels, accepted_only)
        which = "accepted" if accepted_only else "finished"
        return QueueExport(queue_export=gr.update(value=path, visible=True),
                           queue_status=queue_line(self.workspace.progress(location, split),
                                                   f"Exported the {which} items as {kind} (`{Path(path).name}`). "))

    @queue_errors(_warning)
    def push_queue(self, accepted_only: bool, session: Session, oauth_token: gr.OAuthToken | None) -> str:
        """Push the open queue's accepted items as a dataset to SEMFLOW_DATASET_REPO, with the signed-in visitor's
        token (or the server's where the operator allowed it)."""
        location, split = self._open_queue_of(session)
        return self.workspace.push_queue(location, split, self.studio(session).labels,
                                         oauth_token.token if oauth_token is not None else None, accepted_only)

    @queue_errors(_warning)
    def annotators_table(self, session: Session) -> str:
        """Per annotator of the open queue: items done, rejected, median seconds per item, pixel agreement with the
        accepted masks."""
        location, split = self._open_queue_of(session)
        return annotators_markdown(self.workspace.annotators(location, split))


    # --- learning from the corrections -----------------------------------------------------------------------------

    @property
    def learning(self) -> Learning:
        """The process's learning loop for the model it serves."""
        return self.studios.learning

    @queue_errors(Learned.of)
    def start_learning(self, learn_from: str, minutes: Any, session: Session, name: str | None = None,
                       profile: gr.OAuthProfile | None = None) -> Learned:
        """Learn from the open queue's accepted items (or every corrected one) in a job of its own process."""
        person = self._person(session, name, profile)
        location, split = self._open_queue_of(session)
        note = self.learning.start(location, split, self.studios.get().labels, person, learn_from != LEARN_CORRECTED,
                                   minutes)
        return self._learned(session, note)

    @queue_errors(Learned.of)
    def cancel_learning(self, session: Session, name: str | None = None,
                        profile: gr.OAuthProfile | None = None) -> Learned:
        return self._learned(session, self.learning.cancel(self._person(session, name, profile)))

    @queue_errors(Learned.of)
    def resume_learning(self, session: Session, name: str | None = None,
                        profile: gr.OAuthProfile | None = None) -> Learned:
        return self._learned(session, self.learning.resume(self._person(session, name, profile)))

    @queue_errors(Learned.of)
    def roll_back_model(self, session: Session, name: str | None = None,
                        profile: gr.OAuthProfile | None = None) -> Learned:
        """Serve the version the current one replaced; the model info says which."""
        return self._learned(session, self.learning.roll_back(self._person(session, name, profile)), model_info=True)

    @queue_errors(Learned.of)
    def push_model(self, session: Session, oauth_token: gr.OAuthToken | None) -> Learned:
        """Push the version in use to SEMFLOW_MODEL_REPO, with the signed-in visitor's token (or the server's where
        the operator allowed it)."""
        return self._learned(session, self.learning.push(oauth_token.token if oauth_token is not None else None))

    def learning_tick(self, session: Session, model_info: bool = False) -> Learned:
        """While a job or a pre-annotation is at work, every `learning.POLL_SECONDS`: its progress; once it ended, the
        page stops reading and the model info shows the model in use. Quiet on failure (the next look tries again)."""
        try:
            view = self.learning.view()
        except Exception as error:
            logger.warning("reading the learning job failed: %r", error)
            return Learned()
        info = self._model_info(session) if model_info or not view.active else KEEP
        return Learned(view.text, gr.Timer(active=view.active), info)

    def _learned(self, session: Session, note: str, model_info: bool = False) -> Learned:
        view = self.learning.view()
        return Learned(f"{note}\n\n{view.text}", gr.Timer(active=view.active),
                       self._model_info(session) if model_info else KEEP)

    def _model_info(self, session: Session | None) -> Any:
        """The model info of the tab's model, where the tab works with the configured one (the version in use)."""
        studio = self.studios.get()
        if session is not None and session.model is not None and self.studios.get(session.model) is not studio:
            return KEEP
        return model_info_markdown(studio.model)

    # --- fill tools and edits ---------------------------------------------------------------------------------------

    @user_errors
    def fill_at(self, editor: dict[str, Any] | None, session: Session, tool: str, class_name: str,
                replaced_name: str | None, tolerance: Any, opacity: Any, unsure: bool, event: gr.SelectData) -> Filled:
        """A click on the segmentation view fills the clicked region of the photo with a class in the editor's mask;
        for the box tool, a first click sets a corner (marked on the view) and a second replaces one class with
        another inside the box. A fill that would change more than `fill_tools.MAX_FILL_SHARE` of the image is shown
        as a preview and waits for **Apply the fill**; any other is applied at once, as one step of the editor's undo
        history (the page's editor script applies the layer it gets)."""
        if tool not in FILL_TOOLS[1:]:
            return Filled()
        if session is None or session.image is None:
            raise InputError("Fill tools work on a photo: upload one or open a queue item first.")
        studio = self.studio(session)
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
                view = self.view_of(session, session.ids, opacity, unsure)
                return Filled(session, None, mark_corner(view, (x, y)) if view is not None else KEEP,
                              f"Corner at ({x}, {y}); click the opposite corner of the box.", gr.update(visible=False))
        fill = Fill(TOOLS[tool], (x, y), class_id, limits.whole_number(tolerance, "Tolerance"), replaced,
                    session.corner)
        before = mask_from_editor(editor, session.background, studio.labels)
        after = fill.apply(before, np.asarray(session.image.convert("RGB")))
        session = session.replace(corner=None)
        if asks_first(before, after):
            share = changed_share(before, after)
            return Filled(session.replace(fill=fill), None,
                          fill_preview(session.image, before, after, studio.labels, studio.check_opacity(opacity)),
                          f"This fill at ({x}, {y}) would change {share:.1%} of the image (more than "
                          f"{MAX_FILL_SHARE:.0%}); the view shows it (the rest dimmed). **Apply the fill** to make "
                          f"it, or click elsewhere" + (", or lower the tolerance." if fill.tool == fill_tools.FLOOD
                                                       else "."),
                          gr.update(visible=True))
        return self._filled(session, studio, before, after, fill, opacity, unsure)

    @user_errors
    def apply_fill(self, editor: dict[str, Any] | None, session: Session, opacity: Any, unsure: bool) -> Filled:
        """Make the previewed fill, on the editor's mask as it is now (strokes painted since the preview included)."""
        if session is None or session.fill is None or session.image is None:
            raise InputError("There is no fill waiting: click on the segmentation view with a fill tool first.")
        studio = self.studio(session)
        before = mask_from_editor(editor, session.background, studio.labels)
        after = session.fill.apply(before, np.asarray(session.image.convert("RGB")))
        return self._filled(session, studio, before, after, session.fill, opacity, unsure)

    def _filled(self, session: Session, studio: Studio, before: np.ndarray, after: np.ndarray, fill: Fill,
                opacity: Any, unsure: bool) -> Filled:
        """A fill made: the new layer for the editor script, the view and the legend of the mask after it."""
        session = session.replace(ids=after, fill=None)
        name = studio.labels.class_names[fill.class_id]
        x, y = fill.point
        if fill.tool == fill_tools.BOX:
            (x0, y0) = fill.corner
            note = (f"Replaced {studio.labels.class_names[fill.replaced]} with {name} in the box ({x0}, {y0})–({x}, "
                    f"{y})")
        elif fill.tool == fill_tools.FLOOD:
            note = f"Flood-filled the region at ({x}, {y}) with {name}"
        else:
            note = f"Filled the superpixel at ({x}, {y}) with {name}"
        note += f" ({changed_share(before, after):.1%} of the image changed; undo with z or the editor's undo)."
        return Filled(session, fill_payload(session.background, after, studio.labels),
                      self.view_of(session, after, opacity, unsure), note, gr.update(visible=False))

    @user_errors
    def mask_changed(self, editor: dict[str, Any] | None, session: Session, opacity: Any, unsure: bool,
                     margin: Any = None, strength: Any = None) -> MaskFollowed:
        """The editor's mask changed in the browser (a stroke, a fill, undo, redo): the segmentation view and the
        legend follow it, and the page offers to edit a segmented photo whose mask now differs from its segmentation
        (`edit_offer`, at the edit's `margin` and `strength`). The tab's session is left alone, so that this event,
        which the page sends on its own, never writes back an older session over a newer one."""
        if session is None or session.background is None:
            return MaskFollowed()
        studio = self.studio(session)
        try:
            ids = mask_from_editor(editor, session.background, studio.labels)
        except InputError:  # the editor is between two pieces of work; the person's next action says what is wrong
            return MaskFollowed()
        offer = self.edit_offer(session, ids, EDIT_MARGIN if margin is None else margin,
                                EDIT_STRENGTH if strength is None else strength)
        return MaskFollowed(self.view_of(session, ids, opacity, unsure), legend_of(session, ids, studio.labels),
                            **offer)


def into_editor(session: Session, background: PIL.Image.Image, ids: np.ndarray | None, labels) -> tuple[Session, dict]:
    """Put `background` with the mask `ids` (None: empty) into the editor: its value (`editor.editor_value`, the only
    maker of it) and the tab's record of what the editor holds, against which every mask read back is checked."""
    session = session.replace(background=background, ids=ids, corner=None, fill=None)
    return session, editor_value(background, ids, labels)


def round_trip_report(seeds: list[int], checks: list[dict[str, float]], where: str | None = None,
                      model: str | None = None) -> str:
    """The round-trip table: per seed, the agreement of the image's segmentation with the mask (on `where`, words
    naming the pixels compared, for an edit: the changed ones), by `model`, the model that made the images."""
    rows = [f"| {seed} | {check['pixel_agreement']:.1f}% | {check['miou']:.1f} |"
            for seed, check in zip(seeds, checks)]
    by = f", images made by `{model}`" if model else ""
    heading = (f"Round trip (segment each synthesized image, compare with the mask){by}:" if where is None else
               f"Round trip on {where} (segment each edited photo, compare with the mask there){by}:")
    return heading + "\n\n| seed | pixel agreement | mIoU |\n| --- | --- | --- |\n" + "\n".join(rows)


def mask_downloads(ids: np.ndarray, labels, stem: str) -> MaskFiles:
    """The mask's downloads: class ids (mode "L"), the colour preview, and a Pascal-VOC palette PNG."""
    return MaskFiles(*save_mask_files(ids, labels, stem), save_voc_mask(ids, labels, stem))


def beta_slider(studio: Studio) -> dict[str, Any]:
    """The perturbation β slider of `studio`'s model: at the model's own β, up to just below its limit (half the anchor
    spacing, Eq. 14), visible only for models of the paper's formulation trained with one."""
    maximum = studio.beta_limit - BETA_STEP
    return {"value": min(studio.pipe.config.perturbation, maximum), "maximum": maximum, "visible": studio.shows_beta,
            "label": f"Perturbation β (0 to {studio.beta_limit:g}, in 0..255 units; this model was trained with "
                     f"{studio.pipe.config.perturbation:g})"}


def queue_line(progress: Progress | QueueStop, note: str = "") -> str:
    """The queue's status line: `note`, its progress and the count of each status (and of the skipped items)."""
    progress = progress.progress if isinstance(progress, QueueStop) else progress
    return f"{note}**{progress_line(progress)}** ({counts_line(progress) or 'empty'})."


def history_table(versions: list[Version], reviews: list[Review]) -> str:
    """An item's versions (who, when, what they started from, seconds spent) and its reviews, oldest first."""
    rows = ["| version | by | when (UTC) | started from | seconds | note |", "| --- | --- | --- | --- | --- | --- |"]
    for v in versions:
        seconds = "" if v.seconds is None else f"{v.seconds:.0f}"
        rows.append(f"| {v.number} | {_cell(v.who)} | {_when(v.created_at)} | {_cell(v.started_from or '')} | "
                    f"{seconds} | {_cell(v.note or v.kind)} |")
    if reviews:
        rows += ["", "| review | by | when (UTC) | of version | comment |", "| --- | --- | --- | --- | --- |"]
        for r in reviews:
            rows.append(f"| {DECISION_NAMES.get(r.decision, r.decision)} | {_cell(r.reviewer_name or r.reviewer)} | "
                        f"{_when(r.created_at)} | {r.version or ''} | {_cell(r.comment or '')} |")
    return "\n".join(rows)


def annotators_markdown(rows: list[AnnotatorStats]) -> str:
    """The per-annotator table: items done, rejected, median seconds per item, agreement with accepted masks."""
    if not rows:
        return "*Nobody has saved an item of this queue yet.*"
    lines = ["| annotator | items done | rejected | median seconds per item | pixel agreement with accepted |",
             "| --- | --- | --- | --- | --- |"]
    for row in rows:
        seconds = "" if row.median_seconds is None else f"{row.median_seconds:.0f}"
        agreement = "" if row.agreement is None else f"{row.agreement:.1%}"
        lines.append(f"| {_cell(row.name)} | {row.done} | {row.rejected} | {seconds} | {agreement} |")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return clean_text(text, 300).replace("|", "/")


def _when(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _status(status: str | None) -> str | None:
    """The status filter's value as a status code (None: every item)."""
    if status in (None, "", ALL):
        return None
    if status not in STATUSES:
        raise InputError(f"Unknown status '{status}'; choose one of {', '.join(STATUS_NAMES.values())}.")
    return status


def _seconds(session: Session) -> float | None:
    """Seconds since the tab opened the item (or last saved it)."""
    return None if session.opened_at is None else max(0.0, time.time() - session.opened_at)


def _identity(text: str | None) -> dict[str, str | None] | None:
    """A model identity ``name@revision`` (as predictions record it) as a metadata row's fields."""
    if not text:
        return None
    name, _, revision = text.partition("@")
    return {"model": name, "model_revision": revision or None}


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
