"""The app's model work, the same for the page and the API: segment, synthesize with a round-trip check, edit, save
with provenance, pre-annotate, and what the model is. Every range and rule is the pipeline's (`semflow.limits`), whose
sentence reaches the person; the app words only what it alone knows (its own limits, an empty field, an unreadable
upload). The annotation side (queues, the store, pushes) is the process's one `workspace.Workspace`."""

from __future__ import annotations

import inspect
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image

from semflow import SemFlowPipeline, limits
from semflow.loading import LoadedModel
from semflow.regions import edit_region

from .annotations import AnnotationStore, SavedAnnotation
from .errors import InputError
from .examples import photo_examples
from .fields import number
from .info import model_info
from .inputs import fit_for_editing, open_image, open_mask
from .learning import Learning
from .model import Models, model_identity
from .overlays import agreement, overlay, unsure_overlay
from .preannotate import predictor
from .settings import Settings, get_settings
from .work_queue import Progress
from .workspace import Workspace

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


class Studio:
    """One model, the app's settings and the annotation folder. What a person gives reaches the pipeline as numbers
    (`fields.number`), and anything wrong with it raises `semflow.limits.InvalidInput` with the pipeline's sentence, or
    `InputError` with the app's for what the app alone knows."""

    def __init__(self, model: LoadedModel, settings: Settings, workspace: Workspace | None = None) -> None:
        self.model = model
        self.settings = settings
        self.workspace = workspace if workspace is not None else Workspace(settings)
        self._typical_lock = threading.Lock()
        self._typical: list[float | None] = []  # the validation frames' mean confidence, once measured

    @property
    def store(self) -> AnnotationStore:
        """The photos saved one at a time (the workspace's)."""
        return self.workspace.saved

    @property
    def identity(self) -> str:
        """This model as a saved version records it (`model.model_identity`)."""
        return model_identity(self.model)

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
             source: str | None = None, steps: int | None = None, image_source: str = "upload",
             made_by: dict[str, str | None] | None = None, **extra: Any) -> SavedAnnotation:
        """Save `image` with its corrected mask and a metadata row saying who, from what, and with which model
        (`made_by`: the identity of the model whose prediction or synthesis is saved; default this studio's)."""
        if image is None:
            raise InputError("There is no image to save with this mask: upload one, or synthesize from the layout "
                             "first.")
        if image.size != (ids.shape[1], ids.shape[0]):
            raise InputError(f"The mask is {ids.shape[1]}x{ids.shape[0]} but the image is {image.width}x"
                             f"{image.height}.")
        return self.workspace.save_photo(image, ids, self.provenance(annotator, source, steps, image_source, made_by,
                                                                     **extra))

    def provenance(self, annotator: str | None, source: str | None, steps: int | None, image_source: str,
                   made_by: dict[str, str | None] | None = None, **extra: Any) -> dict[str, Any]:
        """The metadata row of a saved annotation (the model by its identity: name and revision or weights hash)."""
        return {
            "annotator": (annotator or "").strip() or "anonymous",
            **(made_by if made_by is not None else self.model.identity()),
            "label_set": self.labels.name,
            "segmentation_steps": steps,
            "source_file": source,
            "image_source": image_source,
            **extra,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def preannotate(self, location: Any, split: Any, progress: Any = None) -> tuple[int, Progress]:
        """Pre-annotate every item of the queue without a prediction (`preannotate.predictor`), recording this model;
        returns how many, and the queue's progress."""
        return self.workspace.preannotate(location, split, predictor(self.pipe), progress, self.identity)

    def count(self) -> int:
        """Annotations in the folder."""
        return self.workspace.count()

    def push(self, visitor_token: str | None) -> str:
        """Push the annotations not pushed before to `SEMFLOW_ANNOTATIONS_REPO`; returns what happened, in words."""
        return self.workspace.push_photos(visitor_token)


def _taken(steps: Any, default: int) -> int:
    """The steps a call took: the model's `default` for None, else the (checked) number asked for."""
    return default if steps is None else int(steps)


class Studios:
    """The studios of one app process: one per model a visitor may pick (`model.Models`), all with the same settings,
    one annotation workspace (`workspace.Workspace`) and one learning loop (`learning.Learning`), whose version in use
    is what the configured model's studio serves. The page and the API are built on one `Studios` and ask it for the
    studio of the model a tab works with."""

    def __init__(self, settings: Settings | None = None, models: Models | None = None,
                 workspace: Workspace | None = None) -> None:
        self.settings = settings or get_settings()
        self.workspace = workspace if workspace is not None else Workspace(self.settings)
        self.learning = Learning(self.settings, self.workspace, models.configured if models is not None else None)
        self.models = models or Models(self.settings.model, versions=self.learning.versions)
        self._lock = threading.Lock()
        self._studios: dict[str | None, Studio] = {}  # by key; None: the configured model
        self._keys: dict[str, str | None] = {}  # a choice's key, once checked

    @classmethod
    def of(cls, studio: Studio) -> Studios:
        """`studio` alone, as the configured model's (tests and scripts that bring their own)."""
        studios = cls(studio.settings, Models.of(studio.model), studio.workspace)
        studios._studios[None] = studio
        return studios

    def choices(self) -> list[str]:
        """The models a visitor may pick, the configured one first."""
        return self.models.choices()

    def get(self, model: str | None = None) -> Studio:
        """The studio of `model` (one of `choices`; None: the configured model, as the version in use serves it: a
        promotion or a roll-back gives it a new studio)."""
        key = self._key(model)
        loaded = self.models.get(key)
        with self._lock:
            studio = self._studios.get(key)
            if studio is None or studio.model is not loaded:
                studio = self._studios[key] = Studio(loaded, self.settings, self.workspace)
            return studio

    def _key(self, model: str | None) -> str | None:
        """The key of a choice (None: the configured model), checked against the choices the first time."""
        if model is None:
            return None
        with self._lock:
            if model in self._keys:
                return self._keys[model]
        choices = self.choices()
        if model not in choices:
            raise InputError(f"Unknown model '{model}'; choose one of {', '.join(choices)}.")
        key = None if model == choices[0] else model
        with self._lock:
            self._keys[model] = key
        return key
