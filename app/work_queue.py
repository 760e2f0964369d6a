"""A work queue's state in the annotation folder: per-item status (stored as codes), claims, pre-annotations and
corrected masks, written atomically under one lock; the images come from a `queue_sources.Source`."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import PIL.PngImagePlugin

from semflow.filenames import safe_stem

from .errors import InputError, UserError
from .queue_sources import QueueItem, Source, open_source
from .settings import get_settings
from .storage import folder_lock, write_atomic, writing

# Statuses and orders as stored and passed around: codes (what the page and the command line call them is
# `queue_words`'s).
TODO, PREANNOTATED, CORRECTED, REVIEWED = "todo", "preannotated", "corrected", "reviewed"
STATUSES = (TODO, PREANNOTATED, CORRECTED, REVIEWED)
FINISHED = (CORRECTED, REVIEWED)  # what "37 / 233 corrected" counts
QUEUE_ORDER, WORST_FIRST = "queue_order", "worst_first"  # natural order, lowest mean confidence first
SORTS = (QUEUE_ORDER, WORST_FIRST)
_FORMER_STATUSES = {"to do": TODO, "pre-annotated": PREANNOTATED}  # what state files written before held
CLAIM_SECONDS = 15 * 60  # a claim lapses this long after it was taken or renewed
QUEUES_DIR, MASKS_DIR, PREDICTIONS_DIR = "queues", "masks", "predictions"
STATE_FILE, CLAIMS_FILE, LOCK_FILE = "state.json", "claims.json", ".queue.lock"
CONFIDENCE_KEY = "semflow-confidence"  # PNG text chunk of a stored prediction: its mean confidence
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Predictor = Callable[[PIL.Image.Image], "np.ndarray | tuple[np.ndarray, float | None]"]


class ItemClaimed(UserError):
    """Someone else is annotating this item now."""


@dataclass(frozen=True)
class Claim:
    """An item reserved for one annotator until `expires` (seconds since the epoch)."""

    item: QueueItem
    owner: str
    expires: float


@dataclass(frozen=True)
class Progress:
    """Counts per status; `done` counts corrected and reviewed items."""

    counts: dict[str, int]
    total: int

    @property
    def done(self) -> int:
        return sum(self.counts[status] for status in FINISHED)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


@dataclass(frozen=True)
class OpenedItem:
    """Everything the editor needs to show an item: the photo, its stored masks, status and confidence."""

    item: QueueItem
    image: PIL.Image.Image
    status: str
    confidence: float | None
    corrected: np.ndarray | None
    predicted: np.ndarray | None

    @property
    def mask(self) -> np.ndarray | None:
        """The corrected mask when there is one, else the pre-annotation, else None."""
        return self.corrected if self.corrected is not None else self.predicted


def open_queue(location: str | os.PathLike, split: str | None = None, root: str | os.PathLike | None = None,
               **kwargs: Any) -> WorkQueue:
    """`WorkQueue` over `open_source(location, split)`, its state in the annotation folder `root`."""
    return WorkQueue(open_source(location, split), root, **kwargs)


class WorkQueue:
    """A queue of images to annotate, its state kept in ``<root>/queues/<title>-<hash>/``.

    Files there: ``state.json`` (per item: status, confidence, who and when; and the name each item was given, kept
    when images are added later), ``claims.json`` (who holds which item until when), ``predictions/<name>.png`` and
    ``masks/<name>.png`` (class ids, mode "L"; a prediction carries its mean confidence in a PNG text chunk). Every
    write goes to a temporary file renamed into place, under a file lock shared by all processes, and the state is
    reconciled with the mask files on opening, so a killed process never loses a saved mask and a restart resumes
    where it stopped. The queue knows nothing of how masks are predicted:
    callers pass the results (`set_prediction`) or a function (`preannotate`).
    """

    def __init__(self, source: Source, root: str | os.PathLike | None = None, claim_seconds: float = CLAIM_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        if not (isinstance(claim_seconds, (int, float)) and math.isfinite(claim_seconds) and claim_seconds > 0):
            raise ValueError(f"claim_seconds must be a positive number, got {claim_seconds!r}")
        self.source = source
        digest = hashlib.sha1(source.key.encode()).hexdigest()[:10]
        self.folder = Path(root if root is not None else get_settings().annotations_dir) / QUEUES_DIR / \
            f"{safe_stem(source.title, 'queue', 40)}-{digest}"
        self.claim_seconds = float(claim_seconds)
        self.clock = clock
        self.lock = folder_lock(self.folder / LOCK_FILE)
        with self._locked("Opening the queue failed"):
            state = self._read(STATE_FILE)
            state["source"] = source.key
            names = state.setdefault("names", {})  # a name, once given, stays (its mask file is named after it)
            taken = set(names.values())
            for item in source.items:
                if item.id not in names:
                    name, number = item.name, item.index
                    while name in taken:
                        name, number = f"{item.name}_{number}", number + 1
                    names[item.id] = name
                    taken.add(name)
            self.items = [QueueItem(item.id, names[item.id], item.index) for item in source.items]
            self._by_id = {item.id: item for item in self.items}
            self._reconcile(state.setdefault("items", {}))
            self._write(STATE_FILE, state)

    def __len__(self) -> int:
        return len(self.items)

    # -- items, status and order -------------------------------------------------------------------------------

    def item(self, item_id: str) -> QueueItem:
        """The item with this id, or `InputError`."""
        try:
            return self._by_id[item_id]
        except (KeyError, TypeError):
            raise InputError(f"There is no item {item_id!r} in this queue; reopen the queue.") from None

    def statuses(self) -> dict[str, str]:
        """Status of every item, by id."""
        records = self._read(STATE_FILE).get("items", {})
        return {item.id: records.get(item.id, {}).get("status", TODO) for item in self.items}

    def status(self, item_id: str) -> str:
        return self._read(STATE_FILE).get("items", {}).get(self.item(item_id).id, {}).get("status", TODO)

    def confidence(self, item_id: str) -> float | None:
        """Mean confidence of the item's pre-annotation, if one was stored with it."""
        return self._read(STATE_FILE).get("items", {}).get(self.item(item_id).id, {}).get("confidence")

    def counts(self) -> dict[str, int]:
        """Number of items per status (every status present, zeros included)."""
        counts = dict.fromkeys(STATUSES, 0)
        for status in self.statuses().values():
            counts[status] += 1
        return counts

    def progress(self) -> Progress:
        return Progress(self.counts(), len(self.items))

    def order(self, sort: str = QUEUE_ORDER) -> list[str]:
        """Item ids in queue order, or `WORST_FIRST`: lowest mean confidence first, items without one last."""
        if sort == QUEUE_ORDER:
            return [item.id for item in self.items]
        if sort != WORST_FIRST:
            raise ValueError(f"sort must be one of {SORTS}, got {sort!r}")
        records = self._read(STATE_FILE).get("items", {})
        confidence = {item.id: records.get(item.id, {}).get("confidence") for item in self.items}
        return sorted(confidence, key=lambda i: (confidence[i] is None, confidence[i] or 0.0, self._by_id[i].index))

    def next_id(self, current: str | None = None, sort: str = QUEUE_ORDER, unfinished: bool = False,
                wrap: bool = False) -> str | None:
        """The item after `current` (the first when None); with `unfinished`, the next not yet corrected, wrapping
        around to the start (with `wrap`, every item wraps around). None when there is none."""
        return next(self._candidates(current, 1, sort, unfinished, self.statuses(), wrap), None)

    def previous_id(self, current: str | None = None, sort: str = QUEUE_ORDER, unfinished: bool = False,
                    wrap: bool = False) -> str | None:
        """The item before `current` (the last when None); with `unfinished` or `wrap`, wrapping around to the end."""
        return next(self._candidates(current, -1, sort, unfinished, self.statuses(), wrap), None)

    def _candidates(self, current: str | None, step: int, sort: str, unfinished: bool, statuses: dict[str, str],
                    wrap: bool = False) -> Iterator[str]:
        order = self.order(sort)
        if step not in (1, -1):
            raise ValueError(f"step must be 1 (next) or -1 (previous), got {step!r}")
        if current is None:
            sequence = order if step == 1 else order[::-1]
        else:
            position = order.index(self.item(current).id)
            after = order[position + 1 :] if step == 1 else order[:position][::-1]
            around = unfinished or wrap
            before = (order[:position] if step == 1 else order[position + 1 :][::-1]) if around else []
            sequence = after + before
        return (i for i in sequence if not unfinished or statuses[i] not in FINISHED)

    # -- claims ------------------------------------------------------------------------------------------------

    def claim(self, item_id: str, owner: str) -> Claim:
        """Reserve the item for `owner` (renewing their claim), releasing their other claims.

        Raises:
            ItemClaimed: another annotator holds it.
        """
        item, owner = self.item(item_id), _owner(owner)
        with self._locked(f"Claiming {item.name} failed"):
            claims = self._live_claims()
            self._check_free(item, owner, claims)
            return self._take(item, owner, claims)

    def claim_next(self, owner: str, current: str | None = None, step: int = 1, unfinished: bool = True,
                   sort: str = QUEUE_ORDER, wrap: bool = False) -> Claim | None:
        """Claim the first item after (`step` 1) or before (-1) `current` that nobody else holds; see `next_id` for
        the order, `unfinished` and `wrap`. Returns None when every such item is finished or held by someone else."""
        owner = _owner(owner)
        with self._locked("Claiming the next item failed"):
            claims = self._live_claims()
            statuses = self.statuses()
            for item_id in self._candidates(current, step, sort, unfinished, statuses, wrap):
                if claims.get(item_id, {}).get("owner", owner) == owner:
                    return self._take(self._by_id[item_id], owner, claims)
            return None

    def resume(self, owner: str, sort: str = QUEUE_ORDER) -> Claim | None:
        """Where `owner` stopped: the unfinished item they still hold, else the first unfinished item nobody holds."""
        owner = _owner(owner)
        with self._locked("Resuming the queue failed"):
            statuses = self.statuses()
            held = [i for i, claim in self._live_claims().items()
                    if claim["owner"] == owner and statuses.get(i, CORRECTED) not in FINISHED]
            if held:
                return self.claim(held[0], owner)
            return self.claim_next(owner, sort=sort)

    def claim_of(self, item_id: str) -> Claim | None:
        """The live claim on the item, if any."""
        claim = self._live_claims().get(self.item(item_id).id)
        return Claim(self._by_id[item_id], claim["owner"], claim["expires"]) if claim else None

    def release(self, item_id: str, owner: str) -> None:
        """Give the item back (only its holder can)."""
        item, owner = self.item(item_id), _owner(owner)
        with self._locked(f"Releasing {item.name} failed"):
            claims = self._live_claims()
            if claims.get(item.id, {}).get("owner") == owner:
                del claims[item.id]
                self._write(CLAIMS_FILE, claims)

    def _live_claims(self) -> dict[str, dict[str, Any]]:
        now = self.clock()
        return {i: claim for i, claim in self._read(CLAIMS_FILE).items() if claim.get("expires", 0) > now}

    def _check_free(self, item: QueueItem, owner: str, claims: dict[str, dict[str, Any]]) -> None:
        holder = claims.get(item.id)
        if holder and holder["owner"] != owner:
            minutes = max(1, math.ceil((holder["expires"] - self.clock()) / 60))
            raise ItemClaimed(f"{item.name} is being annotated by {holder['owner']} (claim held for up to {minutes} "
                              f"more min); pick another item.")

    def _take(self, item: QueueItem, owner: str, claims: dict[str, dict[str, Any]]) -> Claim:
        claims = {i: claim for i, claim in claims.items() if claim["owner"] != owner}
        claims[item.id] = {"owner": owner, "expires": self.clock() + self.claim_seconds}
        self._write(CLAIMS_FILE, claims)
        return Claim(item, owner, claims[item.id]["expires"])

    # -- masks -------------------------------------------------------------------------------------------------

    def mask_path(self, item_id: str) -> Path:
        return self.folder / MASKS_DIR / f"{self.item(item_id).name}.png"

    def prediction_path(self, item_id: str) -> Path:
        return self.folder / PREDICTIONS_DIR / f"{self.item(item_id).name}.png"

    def set_prediction(self, item_id: str, ids: np.ndarray, confidence: float | None = None) -> None:
        """Store a pre-annotation (class ids at the image's size) and its mean confidence; a to-do item becomes
        pre-annotated, a corrected one keeps its status."""
        item = self.item(item_id)
        self._store_predictions([(item, ids, confidence, self.source.image(item).size)])

    def set_predictions(self, predictions: Sequence[tuple[str, np.ndarray, float | None, tuple[int, int]]]) -> None:
        """`set_prediction` for a batch of (item id, class ids, mean confidence, size of the image they were predicted
        from): each mask file written atomically, then the state once for the whole batch (a state write costs more
        the longer the queue)."""
        self._store_predictions([(self.item(item_id), ids, confidence, size)
                                 for item_id, ids, confidence, size in predictions])

    def preannotate(self, predict: Predictor, progress: Callable[[int, int, QueueItem], None] | None = None,
                    overwrite: bool = False, should_stop: Callable[[], bool] | None = None) -> int:
        """Pre-annotate every item without a stored prediction (all with `overwrite`), in queue order.

        Args:
            predict: Photo → class ids (H, W), or (class ids, mean confidence).
            progress: Called after each item with (done, to do, item).
            should_stop: Checked before each item; returning True stops early (what is stored stays).
        Returns:
            How many items were pre-annotated.
        """
        pending = [item for item in self.items if overwrite or not self.prediction_path(item.id).is_file()]
        for done, item in enumerate(pending):
            if should_stop is not None and should_stop():
                return done
            image = self.source.image(item)
            result = predict(image)
            ids, confidence = result if isinstance(result, tuple) else (result, None)
            self._store_predictions([(item, ids, confidence, image.size)])
            if progress is not None:
                progress(done + 1, len(pending), item)
        return len(pending)

    def save(self, item_id: str, ids: np.ndarray, owner: str, reviewed: bool = False) -> Path:
        """Store the corrected mask (class ids at the image's size) as ``masks/<name>.png``; the item becomes
        corrected (reviewed with `reviewed`). Returns the mask's path.

        Raises:
            ItemClaimed: another annotator holds the item (their work is not overwritten).
        """
        item, owner = self.item(item_id), _owner(owner)
        ids = _check_ids(ids, self.source.image(item).size, item)
        with self._locked(f"Saving the mask of {item.name} failed"):
            self._check_free(item, owner, self._live_claims())
            path = self.mask_path(item.id)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, _png(ids))
            self._update(item, REVIEWED if reviewed else CORRECTED, owner)
        return path

    def mark_reviewed(self, item_id: str, owner: str) -> None:
        """Mark a corrected item as reviewed."""
        item, owner = self.item(item_id), _owner(owner)
        with self._locked(f"Marking {item.name} reviewed failed"):
            self._check_free(item, owner, self._live_claims())
            if self.status(item.id) not in FINISHED:
                raise InputError(f"{item.name} has no corrected mask yet; save one before marking it reviewed.")
            self._update(item, REVIEWED, owner)

    def open(self, item_id: str) -> OpenedItem:
        """The photo, the stored masks, the status and the confidence of an item."""
        item = self.item(item_id)
        record = self._read(STATE_FILE).get("items", {}).get(item.id, {})
        return OpenedItem(item, self.source.image(item), record.get("status", TODO), record.get("confidence"),
                          _read_mask(self.mask_path(item.id)), _read_mask(self.prediction_path(item.id)))

    def corrected_masks(self) -> Iterator[tuple[QueueItem, np.ndarray]]:
        """(item, corrected class ids) of every corrected or reviewed item, in queue order (for exports)."""
        statuses = self.statuses()
        for item in self.items:
            if statuses[item.id] in FINISHED:
                ids = _read_mask(self.mask_path(item.id))
                if ids is not None:
                    yield item, ids

    def _store_predictions(self, entries: list[tuple[QueueItem, np.ndarray, float | None, tuple[int, int]]]) -> None:
        checked = []
        for item, ids, confidence, size in entries:
            ids = _check_ids(ids, size, item)
            if confidence is not None:
                confidence = float(confidence)
                if not math.isfinite(confidence):
                    raise ValueError(f"the confidence of {item.name} must be a finite number, got {confidence}")
            checked.append((item, ids, confidence))
        if not checked:
            return
        names = ", ".join(item.name for item, _, _ in checked[:3]) + (" and others" if len(checked) > 3 else "")
        with self._locked(f"Storing the pre-annotation of {names} failed"):
            for item, ids, confidence in checked:
                path = self.prediction_path(item.id)
                path.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(path, _png(ids, confidence))
            state = self._read(STATE_FILE)
            for item, _, confidence in checked:
                record = state.setdefault("items", {}).setdefault(item.id, {"status": TODO})
                record["confidence"] = confidence
                if record["status"] == TODO:
                    record["status"] = PREANNOTATED
            self._write(STATE_FILE, state)

    def _update(self, item: QueueItem, status: str, owner: str) -> None:
        state = self._read(STATE_FILE)
        record = state.setdefault("items", {}).setdefault(item.id, {})
        record.update(status=status, by=owner,
                      updated=dt.datetime.fromtimestamp(self.clock(), dt.timezone.utc).isoformat(timespec="seconds"))
        self._write(STATE_FILE, state)

    def _reconcile(self, records: dict[str, dict[str, Any]]) -> None:
        """Make the statuses agree with the mask files (a process killed between the two writes left them apart)."""
        for item in self.items:
            record = records.setdefault(item.id, {"status": TODO})
            status = _FORMER_STATUSES.get(record.get("status"), record.get("status", TODO))
            if self.mask_path(item.id).is_file():
                record["status"] = status if status in FINISHED else CORRECTED
            elif self.prediction_path(item.id).is_file():
                record["status"] = PREANNOTATED
                if "confidence" not in record:
                    record["confidence"] = _read_confidence(self.prediction_path(item.id))
            else:
                record["status"] = TODO

    def _locked(self, what_failed: str):
        """The queue's folder exists and its lock is held (`storage.writing`)."""
        return writing(self.lock, (self.folder,), what_failed)

    def _read(self, name: str) -> dict[str, Any]:
        path = self.folder / name
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise UserError(f"The queue file {path} is damaged ({error}); the saved masks beside it are intact. "
                            f"Move the file away and reopen the queue to rebuild it from them.") from None

    def _write(self, name: str, data: dict[str, Any]) -> None:
        # compact: the C encoder (an indent falls back to the pure-Python one, ~3x slower on a 20 000-item queue)
        write_atomic(self.folder / name, json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())


def _owner(owner: str) -> str:
    text = _CONTROL.sub("", str(owner or "")).strip()[:100]
    if not text:
        raise InputError("Please enter your name (annotator) before claiming items.")
    return text


def _check_ids(ids: np.ndarray, size: tuple[int, int], item: QueueItem) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise InputError(f"The mask of {item.name} must be an (H, W) array of class ids, got {ids.shape} {ids.dtype}.")
    if ids.shape != (size[1], size[0]):
        raise InputError(f"The mask of {item.name} is {ids.shape[1]}x{ids.shape[0]} but its image is "
                         f"{size[0]}x{size[1]}; they must be the same size.")
    if ids.size and (ids.min() < 0 or ids.max() > 255):
        raise InputError(f"The mask of {item.name} holds ids outside 0..255.")
    return ids.astype(np.uint8)


def _png(ids: np.ndarray, confidence: float | None = None) -> bytes:
    info = PIL.PngImagePlugin.PngInfo()
    if confidence is not None:
        info.add_text(CONFIDENCE_KEY, repr(confidence))
    buffer = io.BytesIO()
    PIL.Image.fromarray(ids).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def _read_mask(path: Path) -> np.ndarray | None:
    if not path.is_file():
        return None
    with PIL.Image.open(path) as image:
        return np.asarray(image.convert("L")).copy()


def _read_confidence(path: Path) -> float | None:
    with PIL.Image.open(path) as image:
        value = image.text.get(CONFIDENCE_KEY) if hasattr(image, "text") else None
    return float(value) if value is not None else None
