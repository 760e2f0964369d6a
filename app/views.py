"""What the page's events give back: one dataclass per view, its fields named after the page's components (`ui` binds
each field to the component of that name), `KEEP` for what an event leaves as the page shows it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Self

import gradio as gr

from semflow.labels import LabelSet

from .overlays import legend_html
from .session import Session


class _Keep:
    """The value of a field the event leaves as it is on the page."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()


@dataclass
class View:
    """Values for some of the page's components, by the components' names."""

    @classmethod
    def names(cls) -> list[str]:
        """The components this view may set: every event that returns it lists them as its outputs."""
        return [field.name for field in dataclasses.fields(cls)]

    def updates(self) -> dict[str, Any]:
        """The components to change, by name, with their new values (fields left at `KEEP` are not among them)."""
        return {name: value for name in self.names() if (value := getattr(self, name)) is not KEEP}


@dataclass
class MaskFiles(View):
    """The mask's downloads: class ids (mode "L"), the colour preview, a Pascal-VOC palette PNG."""

    mask_ids_file: Any = KEEP
    mask_color_file: Any = KEEP
    mask_voc_file: Any = KEEP


@dataclass
class Saved(MaskFiles):
    save_status: Any = KEEP


@dataclass(kw_only=True)
class EditOffer(View):
    """Whether the page offers to edit the photo through its mask (the button beside Synthesize and the edit's
    options, shown once a segmented photo's mask was changed) and the region the edit would change."""

    edit_button: Any = KEEP
    edit_options: Any = KEEP
    edit_region: Any = KEEP

    @classmethod
    def withdrawn(cls) -> dict[str, Any]:
        """The fields that take the offer back (nothing to edit): the button and the options hidden, no region."""
        return {"edit_button": gr.update(visible=False), "edit_options": gr.update(visible=False),
                "edit_region": None}


def results_cleared() -> dict[str, Any]:
    """The fields that take the results of earlier work off the page: the synthesized or edited images, their round
    trip, the trajectory, and the images kept for saving a painted layout."""
    return {"gallery": [], "round_trip": "", "trajectory": None, "synthesized": ()}


@dataclass
class Work(EditOffer):
    """New work in the tab (a photo, a layout, a queue item): the session and the editor, the status lines, the Image
    box, and every output of the earlier work (`cleared`)."""

    session: Session | Any = KEEP
    editor: Any = KEEP
    status: Any = KEEP
    queue_status: Any = KEEP
    image: Any = KEEP
    overlay_view: Any = KEEP
    legend: Any = KEEP
    gallery: Any = KEEP
    round_trip: Any = KEEP
    trajectory: Any = KEEP
    save_status: Any = KEEP
    mask_ids_file: Any = KEEP
    mask_color_file: Any = KEEP
    mask_voc_file: Any = KEEP
    synthesized: Any = KEEP
    history: Any = KEEP
    versions: Any = KEEP

    @classmethod
    def note(cls, message: str) -> Work:
        """Only the queue's status line, saying `message` (what a queue event shows when it fails)."""
        return cls(queue_status=message)

    def cleared(self, labels: LabelSet) -> Work:
        """This view with every output of earlier work it does not set blanked, so that nothing of it stays."""
        blank = {"overlay_view": None, "legend": legend_html(None, labels), "save_status": "", "mask_ids_file": None,
                 "mask_color_file": None, "mask_voc_file": None, "history": "",
                 "versions": gr.update(choices=[], value=None), **results_cleared(), **EditOffer.withdrawn()}
        return dataclasses.replace(self, **{name: value for name, value in blank.items()
                                            if getattr(self, name) is KEEP})


@dataclass
class QueueLine(View):
    """A view of a queue event, which says how it went on the queue's status line."""

    queue_status: Any = KEEP

    @classmethod
    def of(cls, message: str) -> Self:
        """Only the status line, saying `message` (what the event shows when it fails)."""
        return cls(queue_status=message)


@dataclass
class QueueNote(QueueLine):
    """A queue item's work was stored or reviewed: the session, the status line, and the item's history."""

    session: Any = KEEP
    history: Any = KEEP
    versions: Any = KEEP


@dataclass
class QueueExport(QueueLine):
    """A queue's export: the file (its box shown) and the status line."""

    queue_export: Any = KEEP


@dataclass
class ClaimsListed(QueueLine):
    """The queue's live claims as a menu for a reviewer, and the status line."""

    claimed: Any = KEEP


@dataclass
class Segmented(EditOffer):
    """A new segmentation in the editor, and the results made from the mask it replaces taken off the page
    (`results_cleared`)."""

    session: Session
    overlay_view: Any
    legend: Any
    editor: Any
    status: Any
    gallery: Any = KEEP
    round_trip: Any = KEEP
    trajectory: Any = KEEP
    synthesized: Any = KEEP


@dataclass
class Synthesized(View):
    """Images made from the editor's mask (synthesized, or the photo edited), each captioned with its seed and the
    model that made it; the trajectory with a caption that says what it shows and which model made it. It carries no
    session: a synthesis that ends after the tab switched models never writes back the model it started with."""

    gallery: Any
    round_trip: Any
    trajectory: Any = KEEP
    trajectory_caption: Any = KEEP
    synthesized: Any = KEEP


@dataclass
class Filled(View):
    """A fill tool's click: the layer the page's editor script applies (None: nothing to apply), the segmentation
    view, the fill status and the apply button (shown while a large fill waits)."""

    session: Session | Any = KEEP
    fill_layer: Any = None
    overlay_view: Any = KEEP
    fill_status: Any = KEEP
    apply_fill: Any = KEEP


@dataclass
class MaskFollowed(EditOffer):
    """The editor's mask changed in the browser: the views that follow it, and the offer to edit the photo."""

    overlay_view: Any = KEEP
    legend: Any = KEEP


@dataclass
class ModelChosen(View):
    """Another model for the tab: its info and every setting back at its defaults."""

    session: Session
    model_info: Any
    beta: Any
    seg_steps: Any
    seg_solver: Any
    syn_steps: Any
    syn_solver: Any
    trajectory_caption: Any


@dataclass
class Learned(View):
    """The learning loop (`learning.LearningView`): its status, whether the page keeps reading it (the timer), and the
    model info once the model in use changed."""

    learn_status: Any = KEEP
    learn_timer: Any = KEEP
    model_info: Any = KEEP

    @classmethod
    def of(cls, message: str) -> Learned:
        return cls(learn_status=message)


@dataclass
class TabStarted(View):
    """A tab opens: its annotator id and session, and the learning loop as it stands (a job may be running)."""

    browser_id: Any
    session: Session
    learn_status: Any = KEEP
    learn_timer: Any = KEEP
    model_info: Any = KEEP
