"""The app's annotation wing, one per process whatever model a tab uses: the annotation folder and its database, the
work queues opened on it (each once), the photos saved one at a time, who may review, exports and Hub pushes. Every
operation returns plain values; the model's work (segmenting, pre-annotating) stays with the studios."""

from __future__ import annotations

import dataclasses
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image

from semflow.labels import LabelSet

from .annotations import AnnotationStore, Recovery, SavedAnnotation
from .dataset_export import push_dataset, write_dataset, zip_dataset
from .errors import InputError, UserError
from .exports import export_dir, save_cvat_zip
from .inputs import fit_for_editing
from .queue_sources import QueueItem, takes_split
from .settings import Settings, get_settings
from .work_queue import (
    ACCEPTED,
    DONE,
    QUEUE_ORDER,
    WORST_FIRST,
    AnnotatorStats,
    Claim,
    Progress,
    Review,
    Version,
    WorkQueue,
    open_queue,
)

SUGGESTED_FOLDERS = 6  # sub-folders of the queue root the page names as examples


@dataclass(frozen=True)
class Person:
    """Who acts: `key`, what claims and versions are filed under (a signed-in name, or a browser's id); `name`, what
    others are told and what the history shows (the signed-in or typed name; None: unnamed)."""

    key: str
    name: str | None = None


@dataclass(frozen=True)
class QueueStop:
    """Where a queue operation leaves an annotator: the queue's progress, and the item they now hold (None when there
    was no other item to open: the rest are finished, skipped or held by others).

    Attributes:
        image: The item's photo at its editing size (`notice` says when it was brought to it).
        mask: The item's current version, else its pre-annotation, else None; at the editing size.
        predicted: Its pre-annotation at the editing size (to tell what a person corrected), and
            `prediction_model`, the identity of the model that made it.
        status: Its status code (`work_queue.STATUSES`).
        confidence: The pre-annotation's mean confidence, if there is one.
        version: The number of its current version (None before a save).
        comment: The reviewer's comment while the item is rejected.
        skipped: Names of items passed over because their image could not be read.
    """

    progress: Progress
    item: QueueItem | None = None
    image: PIL.Image.Image | None = None
    notice: str | None = None
    mask: np.ndarray | None = None
    predicted: np.ndarray | None = None
    status: str | None = None
    confidence: float | None = None
    prediction_model: str | None = None
    version: int | None = None
    comment: str | None = None
    annotator_name: str | None = None
    skipped: tuple[str, ...] = ()


class Workspace:
    """The annotation folder (`Settings.annotations_dir`) and database (`Settings.database_url`, else the SQLite file
    in the folder) of one app process, shared by every studio."""

    def __init__(self, settings: Settings | None = None, saved: AnnotationStore | None = None) -> None:
        self.settings = settings or get_settings()
        self.saved = saved if saved is not None else AnnotationStore(self.settings.annotations_dir,
                                                                     database=self.settings.database_url)
        self._queues: dict[tuple[str, str | None], WorkQueue] = {}
        self._lock = threading.Lock()

    # --- photos saved one at a time ---------------------------------------------------------------------------------

    def save_photo(self, image: PIL.Image.Image, ids: np.ndarray, metadata: dict[str, Any]) -> SavedAnnotation:
        return self.saved.save(image, ids, metadata)

    def count(self) -> int:
        """Photos saved in the folder."""
        return self.saved.count()

    def recover(self) -> Recovery:
        """Repair what interrupted saves left (called once when the app starts)."""
        return self.saved.recover()

    # --- who may do what --------------------------------------------------------------------------------------------

    def is_reviewer(self, person: Person) -> bool:
        return self.settings.is_reviewer(person.name)

    def require_reviewer(self, person: Person) -> None:
        """Raises `InputError` with a sentence unless `person` may review."""
        if self.is_reviewer(person):
            return
        if not self.settings.reviewers:
            raise InputError("Reviewing is not set up on this server: SEMFLOW_REVIEWERS lists who may review.")
        who = "the signed-in account" if self.settings.oauth else "the name typed in *Your name*"
        raise InputError(f"Only reviewers may do that, and {who} ({person.name or 'none'}) is not one of them "
                         f"(SEMFLOW_REVIEWERS).")

    def push_token(self, visitor_token: str | None, repo: str | None, variable: str) -> str | None:
        """The token a push to `repo` is made with: the signed-in visitor's own, or the server's where the operator
        allowed it.

        Raises:
            InputError: pushing there is not set up (`variable` unset), or there is no identity to push with.
        """
        if repo is None:
            raise InputError(f"Pushing is not set up on this server ({variable} is not set).")
        if visitor_token:
            return visitor_token
        if self.settings.push_with_server_token:
            return self.settings.hf_token  # None: the server's saved Hugging Face login
        if self.settings.oauth:
            raise InputError("Sign in with Hugging Face first: annotations are pushed with your own account.")
        raise InputError("Pushing needs an identity: open this app on a Space with Hugging Face sign-in, or (as the "
                         "operator) set SEMFLOW_PUSH_WITH_SERVER_TOKEN=1 to push with the server's token.")

    def push_photos(self, visitor_token: str | None) -> str:
        """Push the saved photos not pushed before to `SEMFLOW_ANNOTATIONS_REPO`; returns what happened, in words."""
        repo = self.settings.annotations_repo
        token = self.push_token(visitor_token, repo, "SEMFLOW_ANNOTATIONS_REPO")
        url = hub_call(lambda: self.saved.push(repo, token=token), repo, "The annotations are still saved here")
        return "Nothing new to push." if url is None else f"Pushed the new annotations to `{repo}`."

    # --- work queues ------------------------------------------------------------------------------------------------

    def queue(self, location: Any, split: Any = None) -> WorkQueue:
        """The work queue over `location` (a folder of images, an imagefolder, a dataset folder or a Hub dataset id),
        its work in the annotation database; opened once per process."""
        if not isinstance(location, str) or not location.strip():
            raise InputError("Type a folder of images or a Hub dataset id to open as a queue.")
        key = (self.queue_location(location.strip()), (split or "").strip() or None)
        with self._lock:
            if key not in self._queues:
                self._queues[key] = open_queue(key[0], key[1], self.settings.annotations_dir,
                                               self.settings.database_url)
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
            raise InputError(f"That folder is outside the app's queue folder: only {self.root_hint()} can be "
                             f"opened as a queue; a Hub dataset id works from anywhere.")
        return str(path)

    def suggested_folders(self) -> list[str]:
        """A few sub-folders of the queue root (not hidden), by name: what the page offers as examples."""
        own = {self.settings.annotations_dir.resolve(), self.settings.cache_dir.resolve()}  # the app's, not images
        try:
            folders = sorted(path.name for path in self.settings.queue_root.iterdir()
                             if path.is_dir() and not path.name.startswith((".", "_")) and path.resolve() not in own)
        except OSError:
            return []
        return folders[:SUGGESTED_FOLDERS]

    def root_hint(self) -> str:
        """The queue-root rule in words, with examples of what may be typed: shown on the page before anyone types."""
        folders = self.suggested_folders()
        examples = f", such as {', '.join(folders)}" if folders else ""
        return f"the folders inside `{self.settings.queue_root.resolve().name or '/'}` (the app's queue folder, " \
               f"SEMFLOW_QUEUE_ROOT){examples}"

    def takes_split(self, location: Any) -> bool | None:
        """Whether `location` takes a split (`queue_sources.takes_split`); None when it may not be opened here."""
        try:
            location = self.queue_location(location.strip()) if isinstance(location, str) and location.strip() \
                else ""
        except InputError:
            return None
        return bool(location) and takes_split(location)

    def open_queue(self, location: Any, split: Any, person: Person, sort: str, status: str | None = None) -> QueueStop:
        """Open a queue for `person`: with a status filter, at its first such item; worst first, at its least
        confident unfinished item; in queue order where they stopped (the unfinished item they still hold, or their
        work a reviewer sent back), else at the first unfinished one. Unreadable items are marked and passed over."""
        queue = self.queue(location, split)
        if status is not None:
            return self._open_next(queue, person, None, 1, False, sort, True, status)
        if sort == WORST_FIRST:
            return self._open_next(queue, person, None, 1, True, sort, False, None)
        return self._open_claimed(queue, person, lambda: queue.resume(person.key, sort=sort, name=person.name),
                                  lambda: self._open_next(queue, person, None, 1, True, sort, False, None))

    def move(self, location: Any, split: Any, person: Person, current: str | None, step: int = 1,
             unfinished: bool = True, sort: str = WORST_FIRST, wrap: bool = False,
             status: str | None = None) -> QueueStop:
        """Claim for `person` the next (`step` 1) or previous (-1) item after `current` (from the start: None) that
        nobody else holds, in the order `sort`, only unfinished ones with `unfinished` (only those of `status` with
        it), going round with `wrap`; an unreadable item is marked and passed over."""
        return self._open_next(self.queue(location, split), person, current, step, unfinished, sort, wrap, status)

    def claim(self, location: Any, split: Any, person: Person, item_id: str) -> QueueStop:
        """Claim one item for `person` (`work_queue.ItemClaimed` while another annotator holds it)."""
        queue = self.queue(location, split)
        return self._stop(queue, queue.claim(item_id, person.key, person.name))

    def renew(self, location: Any, split: Any, person: Person, item_id: str) -> Claim | None:
        """Renew `person`'s lease on the item their tab shows (None: they no longer hold it)."""
        return self.queue(location, split).renew(item_id, person.key)

    def holder(self, location: Any, split: Any, item_id: str) -> Claim | None:
        return self.queue(location, split).claim_of(item_id)

    def claims(self, location: Any, split: Any) -> list[Claim]:
        return self.queue(location, split).claims()

    def release(self, location: Any, split: Any, person: Person, item_id: str) -> bool:
        """A reviewer releases whoever's claim is on the item."""
        self.require_reviewer(person)
        return self.queue(location, split).release(item_id, person.key, anyone=True)

    def preannotate(self, location: Any, split: Any, predict, progress: Any = None,
                    model: str | None = None) -> tuple[int, Progress]:
        """Pre-annotate every item of the queue without a prediction with `predict` (the studio's); returns how many,
        and the queue's progress."""
        queue = self.queue(location, split)
        return queue.preannotate(predict, progress=progress, model=model), queue.progress()

    def progress(self, location: Any, split: Any) -> Progress:
        return self.queue(location, split).progress()

    def save(self, location: Any, split: Any, person: Person, item_id: str | None, ids: np.ndarray,
             started_from: str | None = None, seconds: float | None = None, review: bool = False) -> Version:
        """Store `ids` (at the editing size) as the new version of the item `person` holds, at the item's own size;
        with `review` (a reviewer only), as the reviewer's correction, accepted."""
        queue = self.queue(location, split)
        item = self._held_item(queue, item_id)
        if review:
            self.require_reviewer(person)
        return queue.save(item.id, at_size(ids, queue.size(item.id)), person.key, person.name,
                          started_from=started_from, seconds=seconds, review=review)

    def submit(self, location: Any, split: Any, person: Person, item_id: str | None) -> Progress:
        queue = self.queue(location, split)
        queue.submit(self._held_item(queue, item_id).id, person.key, person.name)
        return queue.progress()

    def accept(self, location: Any, split: Any, person: Person, item_id: str | None) -> Progress:
        self.require_reviewer(person)
        queue = self.queue(location, split)
        queue.accept(self._held_item(queue, item_id).id, person.key, person.name)
        return queue.progress()

    def reject(self, location: Any, split: Any, person: Person, item_id: str | None, comment: Any) -> Progress:
        self.require_reviewer(person)
        queue = self.queue(location, split)
        queue.reject(self._held_item(queue, item_id).id, person.key, comment if isinstance(comment, str) else "",
                     person.name)
        return queue.progress()

    def history(self, location: Any, split: Any, item_id: str | None) -> tuple[list[Version], list[Review]]:
        queue = self.queue(location, split)
        item = self._held_item(queue, item_id)
        return queue.history(item.id), queue.reviews(item.id)

    def version(self, location: Any, split: Any, item_id: str | None, number: Any) -> np.ndarray:
        """The mask of one version of the item, at the item's size."""
        queue = self.queue(location, split)
        return queue.version_mask(self._held_item(queue, item_id).id, number)

    def restore(self, location: Any, split: Any, person: Person, item_id: str | None, number: Any,
                seconds: float | None = None) -> Version:
        queue = self.queue(location, split)
        return queue.restore(self._held_item(queue, item_id).id, number, person.key, person.name, seconds)

    def annotators(self, location: Any, split: Any) -> list[AnnotatorStats]:
        return self.queue(location, split).annotators()

    # --- exports and pushes -----------------------------------------------------------------------------------------

    def export_cvat(self, location: Any, split: Any, labels: LabelSet, accepted_only: bool = True) -> str:
        """The items (accepted ones, or with `accepted_only` False every finished one) as a CVAT "Segmentation mask
        1.1" zip, ``<queue>_cvat.zip``; returns its path."""
        queue = self.queue(location, split)
        masks = [(item.name, ids) for item, ids in queue.masks(_exported(accepted_only))]
        if not masks:
            raise InputError(_nothing_to_export(accepted_only))
        return save_cvat_zip(masks, labels, queue.source.title)

    def export_dataset(self, location: Any, split: Any, labels: LabelSet, accepted_only: bool = True) -> str:
        """The items as a Hugging Face dataset (`dataset_export`), zipped as ``<queue>_dataset.zip``; its path."""
        queue = self.queue(location, split)
        folder = Path(tempfile.mkdtemp(dir=export_dir()))
        exported = self._write_dataset(queue, labels, folder / "dataset", accepted_only)
        return str(zip_dataset(exported, folder / f"{exported.subfolder}_dataset.zip"))

    def push_queue(self, location: Any, split: Any, labels: LabelSet, visitor_token: str | None,
                   accepted_only: bool = True) -> str:
        """Push the queue's accepted items as a dataset to `SEMFLOW_DATASET_REPO` (its folder there replaced);
        returns what happened, in words."""
        repo = self.settings.dataset_repo
        token = self.push_token(visitor_token, repo, "SEMFLOW_DATASET_REPO")
        queue = self.queue(location, split)
        with tempfile.TemporaryDirectory(dir=export_dir()) as staging:
            exported = self._write_dataset(queue, labels, Path(staging), accepted_only)
            hub_call(lambda: push_dataset(exported, repo, token=token), repo, "The queue is unchanged here")
        return f"Pushed {exported.rows} {'accepted' if accepted_only else 'finished'} item(s) of this queue to " \
               f"`{repo}` (folder `data/{exported.subfolder}`)."

    def write_dataset(self, location: Any, split: Any, labels: LabelSet, folder: Path, accepted_only: bool = True):
        """The queue's accepted items (every finished one without `accepted_only`) as a dataset in `folder`
        (`dataset_export.write_dataset`): what a learning job learns from."""
        return self._write_dataset(self.queue(location, split), labels, folder, accepted_only)

    # --- internals --------------------------------------------------------------------------------------------------

    def _write_dataset(self, queue: WorkQueue, labels: LabelSet, folder: Path, accepted_only: bool):
        try:
            return write_dataset(queue, labels, folder, _exported(accepted_only))
        except InputError as error:
            if "nothing to export" in str(error):
                raise InputError(_nothing_to_export(accepted_only)) from None
            raise

    def _held_item(self, queue: WorkQueue, item_id: str | None) -> QueueItem:
        if item_id is None:
            raise InputError("The editor does not hold a queue item: open one with Next or Previous.")
        return queue.item(item_id)

    def _open_next(self, queue: WorkQueue, person: Person, current: str | None, step: int, unfinished: bool,
                   sort: str, wrap: bool, status: str | None) -> QueueStop:
        """Claim and open the next item; one whose image cannot be read is marked, released and passed over."""
        skipped: list[str] = []
        while True:
            claim = queue.claim_next(person.key, current, step, unfinished and status is None, sort, wrap, status,
                                     person.name)
            stop = self._stop(queue, claim, skipped)
            if stop is not None:
                return stop
            skipped.append(claim.item.name)
            queue.release(claim.item.id, person.key)

    def _open_claimed(self, queue: WorkQueue, person: Person, first, then) -> QueueStop:
        claim = first()
        stop = self._stop(queue, claim, [])
        if stop is not None:
            return stop
        queue.release(claim.item.id, person.key)
        stop = then()
        return dataclasses.replace(stop, skipped=(claim.item.name, *stop.skipped))

    def _stop(self, queue: WorkQueue, claim: Claim | None, skipped: list[str] | None = None) -> QueueStop | None:
        """The view of the claimed item; None when its image cannot be read (it is marked in the queue)."""
        if claim is None:
            return QueueStop(queue.progress(), skipped=tuple(skipped or ()))
        try:
            opened = queue.open(claim.item.id)
        except InputError:
            if skipped is None:
                raise
            return None
        image, notice = fit_for_editing(opened.image.convert("RGB"), self.settings.max_edit_side)
        mask = at_size(opened.mask, image.size) if opened.mask is not None else None
        predicted = at_size(opened.predicted, image.size) if opened.predicted is not None else None
        return QueueStop(queue.progress(), claim.item, image, notice, mask, predicted, opened.status,
                         opened.confidence, opened.prediction_model, opened.version, opened.comment,
                         opened.annotator_name, tuple(skipped or ()))


def at_size(ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Class ids brought to `size` (width, height) by nearest neighbour: between a queue item and its editing size."""
    if (ids.shape[1], ids.shape[0]) == tuple(size):
        return ids
    return np.asarray(PIL.Image.fromarray(np.asarray(ids, np.uint8)).resize(size, PIL.Image.Resampling.NEAREST))


def _exported(accepted_only: bool) -> tuple[str, ...]:
    return (ACCEPTED,) if accepted_only else DONE


def _nothing_to_export(accepted_only: bool) -> str:
    if accepted_only:
        return ("No item of this queue is accepted yet: a reviewer accepts submitted items (or untick *accepted items "
                "only* to export every corrected one).")
    return "No item of this queue is corrected yet: save a mask to the queue first."


def hub_call(call, repo: str, kept: str):
    """`call()`, a Hub upload; a refusal or a lost connection becomes a sentence saying `kept`."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        return call()
    except (HfHubHTTPError, ConnectionError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise UserError(f"The Hub did not take the push to '{repo}' ({reason}). {kept}; please try again "
                        f"later.") from None


__all__ = ["Person", "QueueStop", "Workspace", "at_size", "QUEUE_ORDER"]
