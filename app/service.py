"""The app's work, the same for the page and the API: segment, synthesize with a round-trip check, edit, save with
provenance, push, and what the model is. Every range and rule is the pipeline's (`semflow.limits`), whose sentence
reaches the person; the app words only what it alone knows (its own limits, an empty field, an unreadable upload)."""

from __future__ import annotations

import inspect
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image

from semflow import SemFlowPipeline, limits
from semflow.loading import LoadedModel
from semflow.regions import edit_region

from .annotations import AnnotationStore, SavedAnnotation
from .errors import InputError, UserError
from .examples import photo_examples
from .fields import number
from .info import model_info
from .inputs import fit_for_editing, open_image, open_mask
from .model import Models
from .overlays import agreement, overlay, unsure_overlay
from .preannotate import predictor
from .queue_sources import QueueItem, takes_split
from .settings import Settings, get_settings
from .work_queue import WORST_FIRST, Progress, WorkQueue, open_queue

MAX_VARIANTS = 4  # images one request may synthesize in the app (the pipeline allows more)
# A picture whose mean confidence is below this share of the validation frames' is far from what the model knows. On
# CamVid validation frames the default model's per-frame mean is 0.66 (lowest 0.56), the paper model's 0.61 (0.52);
# non-street pictures (an astronaut, a cat, a cup of coffee) get 0.24-0.40.
UNFAMILIAR_SHARE = 0.75
# What an edit's region grows by and how much of the rest it restyles, unless a person says otherwise: the pipeline's
# defaults.
EDIT_MARGIN, EDIT_STRENGTH = (inspect.signature(SemFlowPipeline.edit).parameters[name].default
                             for name in ("margin", "strength"))


@dataclass(frozen=True)
class Synthesis:
    """Images synthesized from one mask.

    Attributes:
        seeds: The seed of each image (the same request with these seeds gives the same images).
        round_trip: Per image, its segmentation's agreement with the mask (`overlays.agreement`); empty when the check
            was not asked for.
        trajectory: The first image's states from the mask to the image, as frames, when asked for.
    """

    images: list[PIL.Image.Image]
    seeds: list[int]
    round_trip: list[dict[str, float]]
    trajectory: list[PIL.Image.Image] | None = None


@dataclass(frozen=True)
class Edit:
    """A photo edited through its mask: only what the mask changed re-synthesized (`SemFlowPipeline.edit`).

    Attributes:
        images: One edited photo per variant, at the photo's size.
        seeds: The seed of each variant.
        changed: (H, W) bool, the pixels whose class the edit changed.
        region: (H, W) bool, the pixels that may differ from the photo (`changed` grown by the margin; with a strength
            above 0, the whole photo).
        round_trip: Per image, its segmentation's agreement with the edited mask on the changed pixels; empty when
            the check was not asked for.
    """

    images: list[PIL.Image.Image]
    seeds: list[int]
    changed: np.ndarray
    region: np.ndarray
    round_trip: list[dict[str, float]]


@dataclass(frozen=True)
class QueueStop:
    """Where a queue operation leaves an annotator: the queue's progress, and the item they now hold (None when there
    was no other item to open: the rest are finished or held by others).

    Attributes:
        image: The item's photo at its editing size (`notice` says when it was brought to it).
        mask: The item's corrected mask, else its pre-annotation, else None; at the editing size.
        predicted: Its pre-annotation at the editing size (to tell what a person corrected).
        status: Its status code (`work_queue.STATUSES`).
        confidence: The pre-annotation's mean confidence, if there is one.
        unfamiliar: A sentence when that confidence says the photo is far from what the model knows.
    """

    progress: Progress
    item: QueueItem | None = None
    image: PIL.Image.Image | None = None
    notice: str | None = None
    mask: np.ndarray | None = None
    predicted: np.ndarray | None = None
    status: str | None = None
    confidence: float | None = None
    unfamiliar: str | None = None


class Studio:
    """One model, the app's settings and the annotation folder. What a person gives reaches the pipeline as numbers
    (`fields.number`), and anything wrong with it raises `semflow.limits.InvalidInput` with the pipeline's sentence, or
    `InputError` with the app's for what the app alone knows."""

    def __init__(self, model: LoadedModel, settings: Settings, store: AnnotationStore | None = None) -> None:
        self.model = model
        self.settings = settings
        self.store = store if store is not None else AnnotationStore(settings.annotations_dir)
        self._queues: dict[tuple[str, str | None], WorkQueue] = {}
        self._queue_lock, self._typical_lock = threading.Lock(), threading.Lock()
        self._typical: list[float | None] = []  # the validation frames' mean confidence, once measured

    @property
    def pipe(self):
        return self.model.pipe

    @property
    def labels(self):
        return self.model.pipe.labels

    # --- what a person may ask for ----------------------------------------------------------------------------------

    @property
    def beta_limit(self) -> float:
        """β stays below this (`semflow.limits.perturbation_limit`: half the anchor spacing, Eq. 14)."""
        return limits.perturbation_limit(self.pipe.anchor_spec.s)

    @property
    def shows_beta(self) -> bool:
        """Whether the perturbation β is a setting worth offering: the paper's formulation with a perturbed model."""
        return self.pipe.formulation.name == "semflow" and self.pipe.config.perturbation > 0

    def check_variants(self, variants: Any) -> int:
        """The app's own limit: at most `MAX_VARIANTS` images a request (the pipeline allows more)."""
        variants = limits.whole_number(number(variants, "Variants", whole=True), "variants")
        if not 1 <= variants <= MAX_VARIANTS:
            raise InputError(f"Choose between 1 and {MAX_VARIANTS} variants, got {variants}.")
        return variants

    def check_opacity(self, opacity: Any) -> float:
        """The overlay's opacity, 0..1 (the app's own view)."""
        opacity = limits.number(number(opacity, "Opacity"), "opacity")
        if not 0 <= opacity <= 1:
            raise InputError(f"Opacity must be between 0 and 1, got {opacity:g}.")
        return opacity

    def check_blank_size(self, width: Any, height: Any) -> tuple[int, int]:
        """A blank layout's size: the sides a photo may have in the editor (`semflow.limits.check_canvas`)."""
        return limits.check_canvas(number(width, "Width", whole=True), number(height, "Height", whole=True),
                                   "a blank layout", self.settings.max_edit_side)

    def view(self, image: PIL.Image.Image, ids: np.ndarray, opacity: Any, confidence: np.ndarray | None = None,
             settled: np.ndarray | None = None) -> PIL.Image.Image:
        """The mask `ids` over `image` at `opacity`; with `confidence`, the heat-map of where the model is unsure
        instead (pixels `settled` by hand never tinted)."""
        opacity = self.check_opacity(opacity)
        if confidence is not None:
            return unsure_overlay(image, confidence, opacity, settled)
        return overlay(image, ids, self.labels, opacity)

    def class_id(self, name: str | None) -> int | None:
        """The id of a class named in a menu; None for the unlabelled entry (or nothing chosen)."""
        if not name or name == self.labels.ignore_name:
            return None
        if name not in self.labels.class_names:
            raise InputError(f"Unknown class '{name}'.")
        return self.labels.class_names.index(name)

    # --- reading files ----------------------------------------------------------------------------------------------

    def open_photo(self, path: Any) -> PIL.Image.Image:
        """An uploaded photo, within `SEMFLOW_MAX_PIXELS` before it is decoded."""
        return open_image(path, max_pixels=self.settings.max_pixels)

    def open_for_editing(self, path: Any) -> tuple[PIL.Image.Image, str | None]:
        """The photo at its editing size, and what the person should know about it (downscaled, first frame only)."""
        notices: list[str] = []
        image = open_image(path, notices=notices, max_pixels=self.settings.max_pixels)
        image, notice = fit_for_editing(image, max_side=self.settings.max_edit_side)
        return image, " ".join([*notices, *([notice] if notice else [])]) or None

    def open_mask(self, path: Any, size: tuple[int, int] | None = None) -> np.ndarray:
        """An uploaded mask as class ids of the model's label set (of `size` (width, height) when given)."""
        return open_mask(path, self.labels, size=size, max_pixels=self.settings.max_pixels)

    # --- the model --------------------------------------------------------------------------------------------------

    def segment(self, image: PIL.Image.Image, steps: Any = None,
                solver: Any = None) -> tuple[np.ndarray, int, np.ndarray]:
        """Image → (class ids at the image's size, the steps taken, each pixel's confidence in [0, 1]); the model's
        steps and solver for None."""
        steps = number(steps, "Steps", default=None, whole=True)
        out = self.pipe.segment(image, num_inference_steps=steps, solver=solver, return_confidence=True)
        return out.ids[0], _taken(steps, self.pipe.config.segmentation_steps), out.confidence[0]

    def typical_confidence(self) -> float | None:
        """The model's mean confidence on validation frames of its label set (the example photos shipped with the app,
        CamVid validation frames), measured once; None when there are none for its label set."""
        with self._typical_lock:
            if self._typical:
                return self._typical[0]
        photos = [open_image(example["image"]) for example in photo_examples(self.labels)]
        typical = float(np.mean([self.segment(photo)[2].mean() for photo in photos])) if photos else None
        with self._typical_lock:
            self._typical[:] = [typical]
        return typical

    def unfamiliar(self, mean_confidence: float) -> str | None:
        """A sentence when a picture's mean confidence is far below the validation frames' (`UNFAMILIAR_SHARE`): it
        does not look like what the model was trained on. None otherwise (or with nothing to compare with)."""
        typical = self.typical_confidence()
        if typical is None or mean_confidence >= UNFAMILIAR_SHARE * typical:
            return None
        return (f"This picture does not look like the street scenes the model knows: its mean confidence is "
                f"{mean_confidence:.2f}, against {typical:.2f} on validation frames, so the mask is likely wrong in "
                f"many places.")

    def segmentation_frames(self, image: PIL.Image.Image, steps: Any = None,
                            solver: Any = None) -> list[PIL.Image.Image]:
        """The states of segmenting `image`, from the image to the mask, as frames."""
        steps = number(steps, "Steps", default=None, whole=True)
        return self.pipe.segment(image, num_inference_steps=steps, solver=solver, return_trajectory=True).trajectory[0]

    def synthesis_settings(self, variants: Any, seed: Any, beta: Any, steps: Any) -> tuple[int, dict[str, Any]]:
        """(variants, the pipeline's keyword arguments) for what a person asked: the app's own limit on variants, the
        rest as numbers (`fields.number`; the model's β and steps for None) that the pipeline checks."""
        return self.check_variants(variants), {"num_inference_steps": number(steps, "Steps", default=None, whole=True),
                                               "seed": number(seed, "Seed", whole=True),
                                               "perturbation": number(beta, "Perturbation β", default=None)}

    def synthesize(self, ids: np.ndarray, variants: Any = 1, seed: Any = 0, beta: Any = None, steps: Any = None,
                   solver: Any = None, trajectory: bool = False, round_trip: bool = True) -> Synthesis:
        """Mask → `variants` images (seeds `seed`, `seed` + 1, ...), each checked by segmenting it again when
        `round_trip`."""
        variants, settings = self.synthesis_settings(variants, seed, beta, steps)
        out = self.pipe.synthesize(ids, solver=solver, num_images_per_mask=variants, return_trajectory=trajectory,
                                   **settings)
        checks = [agreement(self.pipe.segment(image).ids[0], ids, self.labels) for image in out.images] \
            if round_trip else []
        return Synthesis(out.images, list(out.seeds), checks, out.trajectory[0] if trajectory else None)

    def edit_region(self, changed: np.ndarray, margin: Any, strength: Any = EDIT_STRENGTH) -> np.ndarray:
        """The pixels an edit of the `changed` ones may alter (`semflow.regions.edit_region`): `changed` grown by
        `margin`; with a `strength` above 0, the whole photo (the rest is restyled too)."""
        return edit_region(changed, number(margin, "Margin", default=EDIT_MARGIN, whole=True),
                           number(strength, "Strength", default=EDIT_STRENGTH))

    def edit(self, photo: PIL.Image.Image, ids: np.ndarray, changed: np.ndarray | None = None, variants: Any = 1,
             seed: Any = 0, margin: Any = EDIT_MARGIN, strength: Any = EDIT_STRENGTH, beta: Any = None,
             steps: Any = None, solver: Any = None, round_trip: bool = True) -> Edit:
        """`photo` with what its edited mask `ids` changed re-synthesized, `variants` times (seeds `seed`, `seed` + 1,
        ...): the changed pixels are `changed` (None: where `ids` differs from the photo's own segmentation), grown by
        `margin`; outside them the photo's own pixels (with `strength` 0). Each edited photo is checked by segmenting
        it again, on the changed pixels, when `round_trip`."""
        variants, settings = self.synthesis_settings(variants, seed, beta, steps)
        out = self.pipe.edit(photo, ids, changed=changed, num_images=variants, solver=solver,
                             margin=number(margin, "Margin", default=EDIT_MARGIN, whole=True),
                             strength=number(strength, "Strength", default=EDIT_STRENGTH), **settings)
        checks = [agreement(self.pipe.segment(image).ids[0][out.changed], ids[out.changed], self.labels)
                  for image in out.images] if round_trip else []
        return Edit(out.images, list(out.seeds), out.changed, out.region, checks)

    def info(self) -> dict[str, Any]:
        """What the model is (`info.model_info`: its one description, under its identity, never a path)."""
        return model_info(self.model)

    # --- the annotation folder --------------------------------------------------------------------------------------

    def save(self, image: PIL.Image.Image | None, ids: np.ndarray, annotator: str | None = None,
             source: str | None = None, steps: int | None = None, image_source: str = "upload") -> SavedAnnotation:
        """Save `image` with its corrected mask and a metadata row saying who, from what, and with which model."""
        if image is None:
            raise InputError("There is no image to save with this mask: upload one, or synthesize from the layout "
                             "first.")
        if image.size != (ids.shape[1], ids.shape[0]):
            raise InputError(f"The mask is {ids.shape[1]}x{ids.shape[0]} but the image is {image.width}x"
                             f"{image.height}.")
        return self.store.save(image, ids, self.provenance(annotator, source, steps, image_source))

    def provenance(self, annotator: str | None, source: str | None, steps: int | None,
                   image_source: str) -> dict[str, Any]:
        """The metadata row of a saved annotation (the model by its identity: name and revision or weights hash)."""
        return {
            "annotator": (annotator or "").strip() or "anonymous",
            **self.model.identity(),
            "label_set": self.labels.name,
            "segmentation_steps": steps,
            "source_file": source,
            "image_source": image_source,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    # --- work queues ------------------------------------------------------------------------------------------------

    def queue(self, location: Any, split: Any = None) -> WorkQueue:
        """The work queue over `location` (a folder of images, an imagefolder, a dataset folder or a Hub dataset id),
        its state in the annotation folder; opened once per process."""
        if not isinstance(location, str) or not location.strip():
            raise InputError("Type a folder of images or a Hub dataset id to open as a queue.")
        key = (self.queue_location(location.strip()), (split or "").strip() or None)
        with self._queue_lock:
            if key not in self._queues:
                self._queues[key] = open_queue(key[0], key[1], self.store.root)
            return self._queues[key]

    def queue_location(self, location: str) -> str:
        """A local folder as an absolute path inside `SEMFLOW_QUEUE_ROOT` (relative ones are taken from there), so a
        visitor cannot open the server's other folders; anything that is not a local path goes on as a Hub id."""
        root = self.settings.queue_root.resolve()
        path = Path(location).expanduser()
        path = (path if path.is_absolute() else root / path).resolve()
        if not path.exists():
            return location
        if not path.is_relative_to(root):
            raise InputError("Only folders inside the app's queue folder (SEMFLOW_QUEUE_ROOT) can be opened as a "
                             "queue; a Hub dataset id works from anywhere.")
        return str(path)

    def takes_split(self, location: Any) -> bool | None:
        """Whether `location` takes a split (`queue_sources.takes_split`); None when it may not be opened here."""
        try:
            location = self.queue_location(location.strip()) if isinstance(location, str) and location.strip() \
                else ""
        except InputError:
            return None
        return bool(location) and takes_split(location)

    def open_queue(self, location: Any, split: Any, owner: str, sort: str) -> QueueStop:
        """Open a queue for `owner`: worst first, at its least confident unfinished item; in queue order where they
        stopped (the unfinished item they still hold), else at the first unfinished one."""
        queue = self.queue(location, split)
        claim = queue.claim_next(owner, sort=sort) if sort == WORST_FIRST else queue.resume(owner, sort=sort)
        return self._stop(queue, claim)

    def move(self, location: Any, split: Any, owner: str, current: str | None, step: int = 1,
             unfinished: bool = True, sort: str = WORST_FIRST, wrap: bool = False) -> QueueStop:
        """Claim for `owner` the next (`step` 1) or previous (-1) item after `current` (from the start: None) that
        nobody else holds, in the order `sort`, only unfinished ones with `unfinished`, going round with `wrap`."""
        queue = self.queue(location, split)
        return self._stop(queue, queue.claim_next(owner, current, step, unfinished, sort, wrap=wrap))

    def claim(self, location: Any, split: Any, owner: str, item_id: str) -> QueueStop:
        """Claim one item for `owner` (`work_queue.ItemClaimed` while another annotator holds it)."""
        queue = self.queue(location, split)
        return self._stop(queue, queue.claim(item_id, owner))

    def save_to_queue(self, location: Any, split: Any, owner: str, item_id: str | None,
                      ids: np.ndarray) -> tuple[str, Progress]:
        """Store `ids` (at the editing size) as the corrected mask of the item `owner` holds, at the item's own size;
        returns the item's name and the queue's progress."""
        queue = self.queue(location, split)
        if item_id is None:
            raise InputError("The editor does not hold a queue item: open one with Next or Previous.")
        item = queue.item(item_id)
        queue.save(item.id, at_size(ids, queue.source.image(item).size), owner)
        return item.name, queue.progress()

    def preannotate(self, location: Any, split: Any, progress: Any = None) -> tuple[int, Progress]:
        """Pre-annotate every item of the queue without a prediction (`preannotate.predictor`); returns how many, and
        the queue's progress."""
        queue = self.queue(location, split)
        return queue.preannotate(predictor(self.pipe), progress=progress), queue.progress()

    def queue_progress(self, location: Any, split: Any) -> Progress:
        return self.queue(location, split).progress()

    def corrected_masks(self, location: Any, split: Any) -> tuple[str, list[tuple[str, np.ndarray]]]:
        """The queue's short name and (item name, class ids) of each corrected item, in queue order (for exports)."""
        queue = self.queue(location, split)
        return queue.source.title, [(item.name, ids) for item, ids in queue.corrected_masks()]

    def _stop(self, queue: WorkQueue, claim) -> QueueStop:
        if claim is None:
            return QueueStop(queue.progress())
        opened = queue.open(claim.item.id)
        image, notice = fit_for_editing(opened.image.convert("RGB"), self.settings.max_edit_side)
        mask = at_size(opened.mask, image.size) if opened.mask is not None else None
        predicted = at_size(opened.predicted, image.size) if opened.predicted is not None else None
        unfamiliar = self.unfamiliar(opened.confidence) if opened.confidence is not None else None
        return QueueStop(queue.progress(), claim.item, image, notice, mask, predicted, opened.status,
                         opened.confidence, unfamiliar)

    def count(self) -> int:
        """Annotations in the folder."""
        return len(self.store.rows())

    def push_token(self, visitor_token: str | None) -> str | None:
        """The token a push is made with: the signed-in visitor's own, or the server's where the operator allowed it.

        Raises:
            InputError: pushing is not set up, or nobody is signed in and the server's token may not be used.
        """
        if self.settings.annotations_repo is None:
            raise InputError("Pushing is not set up on this server (SEMFLOW_ANNOTATIONS_REPO is not set).")
        if visitor_token:
            return visitor_token
        if self.settings.push_with_server_token:
            return self.settings.hf_token  # None: the server's saved Hugging Face login
        if self.settings.oauth:
            raise InputError("Sign in with Hugging Face first: annotations are pushed with your own account.")
        raise InputError("Pushing needs an identity: open this app on a Space with Hugging Face sign-in, or (as the "
                         "operator) set SEMFLOW_PUSH_WITH_SERVER_TOKEN=1 to push with the server's token.")

    def push(self, visitor_token: str | None) -> str:
        """Push the annotations not pushed before to `SEMFLOW_ANNOTATIONS_REPO`; returns what happened, in words."""
        from huggingface_hub.errors import HfHubHTTPError

        token, repo = self.push_token(visitor_token), self.settings.annotations_repo
        try:
            url = self.store.push(repo, token=token)
        except (HfHubHTTPError, ConnectionError) as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
            raise UserError(f"The Hub did not take the push to '{repo}' ({reason}). The annotations are still saved "
                            f"here; please try again later.") from None
        return "Nothing new to push." if url is None else f"Pushed the new annotations to `{repo}`."


def _taken(steps: Any, default: int) -> int:
    """The steps a call took: the model's `default` for None, else the (checked) number asked for."""
    return default if steps is None else int(steps)


def at_size(ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Class ids brought to `size` (width, height) by nearest neighbour: between a queue item and its editing size."""
    if (ids.shape[1], ids.shape[0]) == tuple(size):
        return ids
    return np.asarray(PIL.Image.fromarray(np.asarray(ids, np.uint8)).resize(size, PIL.Image.Resampling.NEAREST))


class Studios:
    """The studios of one app process: one per model a visitor may pick (`model.Models`), all with the same settings
    and one annotation folder. The page and the API are built on one `Studios` and ask it for the studio of the
    model a tab works with."""

    def __init__(self, settings: Settings | None = None, models: Models | None = None,
                 store: AnnotationStore | None = None) -> None:
        self.settings = settings or get_settings()
        self.models = models or Models(self.settings.model)
        self.store = store if store is not None else AnnotationStore(self.settings.annotations_dir)
        self._lock = threading.Lock()
        self._studios: dict[str | None, Studio] = {}  # by choice; None: the configured model

    @classmethod
    def of(cls, studio: Studio) -> Studios:
        """`studio` alone, as the configured model's (tests and scripts that bring their own)."""
        studios = cls(studio.settings, Models.of(studio.model), studio.store)
        studios._studios[None] = studio
        return studios

    def choices(self) -> list[str]:
        """The models a visitor may pick, the configured one first."""
        return self.models.choices()

    def get(self, model: str | None = None) -> Studio:
        """The studio of `model` (one of `choices`; None: the configured model). A studio made before is returned at
        once, without checking the choices again (every event asks for one)."""
        with self._lock:
            if model in self._studios:
                return self._studios[model]
        choices = self.choices()
        if model is not None and model not in choices:
            raise InputError(f"Unknown model '{model}'; choose one of {', '.join(choices)}.")
        key = None if model is None or model == choices[0] else model  # None: the configured model
        loaded = self.models.get(key)
        with self._lock:
            if key not in self._studios:
                self._studios[key] = Studio(loaded, self.settings, self.store)
            self._studios[model] = self._studios[key]  # the configured model also by its name
            return self._studios[key]
