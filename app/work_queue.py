"""A work queue in the annotation database: per item its status, confidence and any problem, claims (leases an open
tab renews), pre-annotations, every saved version and every review. Each operation reads and writes only its own rows
(its cost does not grow with the queue); the images come from a `queue_sources.Source`."""

from __future__ import annotations

import functools
import io
import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import PIL.PngImagePlugin
import sqlalchemy as sa
from sqlalchemy.orm import Session

from .errors import InputError, UserError
from .queue_sources import QueueItem, Source, open_source
from .settings import get_settings
from .store import legacy
from .store.database import Database, database_url, open_database
from .store.schema import (
    ACCEPT,
    ACCEPTED,
    CORRECT,
    CORRECTED,
    CORRECTION,
    DONE,
    IMPORT,
    LAST,
    PREANNOTATED,
    REJECT,
    REJECTED,
    RESTORE,
    SAVE,
    STATUSES,
    SUBMITTED,
    TODO,
    UNFINISHED,
    ClaimRow,
    CountRow,
    ItemRow,
    PredictionRow,
    QueueRow,
    ReviewRow,
    VersionRow,
)
from .text_fields import clean_text

__all__ = ["ACCEPTED", "CORRECTED", "DONE", "PREANNOTATED", "REJECTED", "STATUSES", "SUBMITTED", "TODO",
           "UNFINISHED", "QUEUE_ORDER", "WORST_FIRST", "SORTS", "WorkQueue", "open_queue"]

QUEUE_ORDER, WORST_FIRST = "queue_order", "worst_first"  # natural order, lowest mean confidence first
SORTS = (QUEUE_ORDER, WORST_FIRST)
LEASE_SECONDS = 90.0  # a claim lapses this long after it was taken or renewed (an open tab renews it)
RENEW_SECONDS = 30.0  # how often an open tab renews its lease: a lapse needs three renewals missed
VANISHED = "its image is no longer in the source"  # the problem of an item whose file went away
_BATCH = 16  # candidates read at once while looking for an item to claim

Predictor = Callable[[PIL.Image.Image], "np.ndarray | tuple[np.ndarray, float | None]"]


class ItemClaimed(UserError):
    """Someone else is annotating this item now."""


@dataclass(frozen=True)
class Claim:
    """An item reserved for one annotator (`owner`, their key; `owner_name`, what others are told) until `expires`
    (seconds since the epoch)."""

    item: QueueItem
    owner: str
    expires: float
    owner_name: str | None = None

    @property
    def who(self) -> str:
        return self.owner_name or "another annotator"


@dataclass(frozen=True)
class Progress:
    """Counts per status, and the items skipped for a problem (`problems` of them; the first few with their reason)."""

    counts: dict[str, int]
    total: int
    problems: int = 0
    problem_items: tuple[tuple[str, str], ...] = ()

    @property
    def done(self) -> int:
        return sum(self.counts[status] for status in DONE)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


@dataclass(frozen=True)
class Version:
    """One saved mask of an item (its mask: `WorkQueue.version_mask`).

    Attributes:
        kind: "save", "restore" (a copy of an earlier version), "correction" (a reviewer's) or "import".
        started_from: What was corrected: a model's identity (its prediction), or "version N".
        seconds: Time from opening the item (or the previous save) to this save, as the page measured it.
    """

    number: int
    author: str
    author_name: str | None
    kind: str
    started_from: str | None
    seconds: float | None
    note: str | None
    created_at: float

    @property
    def who(self) -> str:
        return self.author_name or "an unnamed annotator"


@dataclass(frozen=True)
class Review:
    """A reviewer's decision ("accept", "correct" or "reject") on `version` of an item."""

    decision: str
    version: int | None
    comment: str | None
    reviewer: str
    reviewer_name: str | None
    annotator_name: str | None
    agreement: float | None
    created_at: float


@dataclass(frozen=True)
class AnnotatorStats:
    """One annotator's work in a queue: items finished (corrected, submitted or accepted, as its last annotator),
    rejections of their work, median seconds per item (over their saves), and the mean pixel agreement of their
    versions with the accepted masks (None before a review)."""

    name: str
    done: int
    rejected: int
    median_seconds: float | None
    agreement: float | None


@dataclass(frozen=True)
class Entry:
    """An item's current mask as exports take it: its version's number, who annotated it, its status, and when that
    version was saved (seconds since the epoch)."""

    item: QueueItem
    ids: np.ndarray
    version: int
    annotator: str | None
    status: str
    saved_at: float


@dataclass(frozen=True)
class OpenedItem:
    """Everything the editor needs to show an item: the photo, its masks, status, confidence and history's head.

    Attributes:
        corrected: The current version's mask (None before a save).
        predicted: The pre-annotation's mask, and `prediction_model`, the model that made it.
        version: The current version's number (None before a save).
        comment: The reviewer's comment while the item is rejected.
    """

    item: QueueItem
    image: PIL.Image.Image
    status: str
    confidence: float | None
    corrected: np.ndarray | None
    predicted: np.ndarray | None
    prediction_model: str | None = None
    version: int | None = None
    comment: str | None = None
    annotator_name: str | None = None

    @property
    def mask(self) -> np.ndarray | None:
        """The current version when there is one, else the pre-annotation, else None."""
        return self.corrected if self.corrected is not None else self.predicted


def open_queue(location: str | Path, split: str | None = None, root: str | Path | None = None,
               database: str | None = None, **kwargs: Any) -> WorkQueue:
    """`WorkQueue` over `open_source(location, split)`. Its database: `database` (a URL) when given; else the SQLite
    file in the annotation folder `root`; with neither, the app's settings (`SEMFLOW_DATABASE_URL`, else the SQLite
    file in `SEMFLOW_ANNOTATIONS_DIR`)."""
    if root is None:
        settings = get_settings()
        root, database = settings.annotations_dir, database or settings.database_url
    return WorkQueue(open_source(location, split), open_database(database_url(root, database)), root, **kwargs)


class WorkQueue:
    """The images of one source to annotate, their work kept in `database` (see `store.schema` for what each row
    holds). Opening a queue lists its source and adds its new items (an item's name, once given, stays); an item that
    left the source is kept with its versions and skipped; a queue kept by the folder-based store under `root` is
    imported on first opening (`store.legacy`).

    Statuses: an annotator saves versions (corrected) and submits one (submitted); a reviewer accepts it, corrects it
    (a new version, accepted) or rejects it with a comment (rejected: back to its annotator). A claim keeps other
    annotators off an item until it lapses (`claim_seconds` after it was taken or renewed). An unreadable image is
    marked with its reason and skipped by every walk, pre-annotation and export. The queue knows nothing of how masks
    are predicted: callers pass the results (`set_prediction`) or a function (`preannotate`).
    """

    def __init__(self, source: Source, database: Database, root: str | Path | None = None,
                 claim_seconds: float = LEASE_SECONDS, clock: Callable[[], float] = time.time) -> None:
        if not (isinstance(claim_seconds, (int, float)) and math.isfinite(claim_seconds) and claim_seconds > 0):
            raise ValueError(f"claim_seconds must be a positive number, got {claim_seconds!r}")
        self.source, self.db = source, database
        self.root = Path(root) if root is not None else None
        self.claim_seconds = float(claim_seconds)
        self.clock = clock
        self._sync()
        self._retry_problems()

    def __len__(self) -> int:
        return len(self.items)

    # -- items, status and order -------------------------------------------------------------------------------------

    def item(self, item_id: str) -> QueueItem:
        """The item with this id, or `InputError`."""
        try:
            return self._by_id[item_id]
        except (KeyError, TypeError):
            raise InputError(f"There is no item {item_id!r} in this queue; reopen the queue.") from None

    def status(self, item_id: str) -> str:
        return self._row(item_id, ItemRow.status)

    def confidence(self, item_id: str) -> float | None:
        """Mean confidence of the item's pre-annotation, if one was stored with it."""
        return self._row(item_id, ItemRow.confidence)

    def problem(self, item_id: str) -> str | None:
        """Why the item is skipped (unreadable, gone from the source), or None."""
        return self._row(item_id, ItemRow.problem)

    def size(self, item_id: str, what_failed: str = "Reading the queue failed") -> tuple[int, int]:
        """The item's image size (width, height): stored once known, else read from its image."""
        item = self.item(item_id)
        with self.db.read(what_failed) as s:
            width, height = s.execute(sa.select(ItemRow.width, ItemRow.height)
                                      .where(ItemRow.id == self._ids[item.id])).one()
        if width and height:
            return width, height
        return self.source.image(item).size

    def statuses(self) -> dict[str, str]:
        """Status of every item, by id (reads the whole queue: for exports and tests, not for each step)."""
        with self.db.read("Reading the queue failed") as s:
            rows = _pairs(s.execute(sa.select(ItemRow.key, ItemRow.status).where(ItemRow.queue_id == self.queue_id)))
        return {item.id: rows[item.id] for item in self.items}

    def counts(self) -> dict[str, int]:
        """Number of items per status (every status present, zeros included): one row per status."""
        with self.db.read("Reading the queue's progress failed") as s:
            rows = _pairs(s.execute(sa.select(CountRow.status, CountRow.count).where(CountRow.queue_id ==
                                                                                  self.queue_id)))
        return {status: rows.get(status, 0) for status in STATUSES}

    def progress(self) -> Progress:
        """The counts, the number of items skipped for a problem and the first few of them (an index of them)."""
        with self.db.read("Reading the queue's progress failed") as s:
            rows = _pairs(s.execute(sa.select(CountRow.status, CountRow.count).where(CountRow.queue_id ==
                                                                                  self.queue_id)))
            problem = sa.and_(ItemRow.queue_id == self.queue_id, ItemRow.problem.isnot(None))
            problems = s.scalar(sa.select(sa.func.count()).select_from(ItemRow).where(problem))
            first = s.execute(sa.select(ItemRow.name, ItemRow.problem).where(problem).order_by(ItemRow.position)
                              .limit(3)).all()
        counts = {status: rows.get(status, 0) for status in STATUSES}
        return Progress(counts, sum(counts.values()), problems, tuple((name, why) for name, why in first))

    def order(self, sort: str = QUEUE_ORDER) -> list[str]:
        """Item ids in queue order, or `WORST_FIRST`: lowest mean confidence first, items without one last (reads
        the whole queue)."""
        columns = self._order_columns(sort)
        with self.db.read("Reading the queue failed") as s:
            return list(s.scalars(sa.select(ItemRow.key).where(ItemRow.queue_id == self.queue_id)
                                  .order_by(*columns)))

    def next_id(self, current: str | None = None, sort: str = QUEUE_ORDER, unfinished: bool = False,
                wrap: bool = False, status: str | None = None) -> str | None:
        """The item after `current` (the first when None); with `unfinished`, the next one an annotator has still to
        do, wrapping around to the start (with `wrap`, every item wraps around); with `status`, only items of that
        status. Items skipped for a problem are never offered. None when there is none."""
        with self.db.read("Reading the queue failed") as s:
            for row in self._walk(s, current, 1, sort, unfinished, wrap, status):
                return row.key
        return None

    def previous_id(self, current: str | None = None, sort: str = QUEUE_ORDER, unfinished: bool = False,
                    wrap: bool = False, status: str | None = None) -> str | None:
        """The item before `current` (the last when None); with `unfinished` or `wrap`, wrapping around to the end."""
        with self.db.read("Reading the queue failed") as s:
            for row in self._walk(s, current, -1, sort, unfinished, wrap, status):
                return row.key
        return None

    # -- claims ------------------------------------------------------------------------------------------------------

    def claim(self, item_id: str, owner: str, name: str | None = None) -> Claim:
        """Reserve the item for `owner` (renewing their claim), releasing their other claims in this queue; `name` is
        what other annotators are told.

        Raises:
            ItemClaimed: another annotator holds it.
        """
        item, owner, name = self.item(item_id), _owner(owner), _name(name)
        with self.db.write(f"Claiming the item {item.name} failed") as s:
            now = self.clock()
            if not self._take(s, self._ids[item.id], owner, name, now):
                raise ItemClaimed(self._claimed_message(s, item, now))
        return Claim(item, owner, now + self.claim_seconds, name)

    def claim_next(self, owner: str, current: str | None = None, step: int = 1, unfinished: bool = True,
                   sort: str = QUEUE_ORDER, wrap: bool = False, status: str | None = None,
                   name: str | None = None) -> Claim | None:
        """Claim the first item after (`step` 1) or before (-1) `current` that nobody else holds; see `next_id` for
        the order, `unfinished`, `wrap` and `status` (with `unfinished`, a rejected item is offered only to its own
        annotator). Returns None when every such item is finished or held by someone else."""
        owner, name = _owner(owner), _name(name)
        with self.db.write("Claiming the next item failed") as s:
            now = self.clock()
            for row in self._walk(s, current, step, sort, unfinished, wrap, status, owner, name, now):
                wanted = functools.partial(self._still_wanted, unfinished=unfinished, status=status, owner=owner,
                                           name=name)
                if self._take(s, row.id, owner, name, now, wanted):
                    return Claim(self._by_id[row.key], owner, now + self.claim_seconds, name)
        return None

    def resume(self, owner: str, sort: str = QUEUE_ORDER, name: str | None = None) -> Claim | None:
        """Where `owner` stopped: the unfinished item they still hold, else an item of theirs that a reviewer rejected,
        else the first unfinished item nobody holds."""
        owner, name = _owner(owner), _name(name)
        with self.db.read("Resuming the queue failed") as s:
            held = s.scalar(sa.select(ItemRow.key).join(ClaimRow, ClaimRow.item_id == ItemRow.id).where(
                ClaimRow.queue_id == self.queue_id, ClaimRow.owner == owner, ClaimRow.expires > self.clock(),
                ItemRow.unfinished.is_(True)).limit(1))
            mine = sa.or_(ItemRow.annotator == owner, ItemRow.annotator_name == name) if name else \
                ItemRow.annotator == owner
            rejected = s.scalars(sa.select(ItemRow.key).where(
                ItemRow.queue_id == self.queue_id, ItemRow.status == REJECTED, ItemRow.problem.is_(None), mine)
                .order_by(ItemRow.position).limit(_BATCH)).all()
        for item_id in ([held] if held else []) + list(rejected):
            try:
                return self.claim(item_id, owner, name)
            except ItemClaimed:
                continue
        return self.claim_next(owner, sort=sort, name=name)

    def renew(self, item_id: str, owner: str) -> Claim | None:
        """Extend `owner`'s live claim on the item by a full lease (an open tab calls this while it shows the item);
        None when they no longer hold it (it lapsed or was released)."""
        item, owner = self.item(item_id), _owner(owner)
        with self.db.write(f"Renewing the claim on {item.name} failed") as s:
            now = self.clock()
            renewed = s.execute(sa.update(ClaimRow).where(
                ClaimRow.item_id == self._ids[item.id], ClaimRow.owner == owner, ClaimRow.expires > now)
                .values(expires=now + self.claim_seconds).returning(ClaimRow.owner_name)).first()
        return Claim(item, owner, now + self.claim_seconds, renewed[0]) if renewed else None

    def claim_of(self, item_id: str) -> Claim | None:
        """The live claim on the item, if any."""
        item = self.item(item_id)
        with self.db.read("Reading the queue's claims failed") as s:
            row = s.get(ClaimRow, self._ids[item.id])
            live = row is not None and row.expires > self.clock()
            return Claim(item, row.owner, row.expires, row.owner_name) if live else None

    def claims(self) -> list[Claim]:
        """Every live claim in the queue, in queue order."""
        with self.db.read("Reading the queue's claims failed") as s:
            rows = s.execute(sa.select(ItemRow.key, ClaimRow.owner, ClaimRow.expires, ClaimRow.owner_name)
                             .join(ItemRow, ItemRow.id == ClaimRow.item_id)
                             .where(ClaimRow.queue_id == self.queue_id, ClaimRow.expires > self.clock())
                             .order_by(ItemRow.position)).all()
        return [Claim(self._by_id[key], owner, expires, name) for key, owner, expires, name in rows
                if key in self._by_id]

    def release(self, item_id: str, owner: str, anyone: bool = False) -> bool:
        """Give the item back: its holder can, and with `anyone` (a reviewer) whoever holds it. Returns whether a
        claim was released."""
        item, owner = self.item(item_id), _owner(owner)
        with self.db.write(f"Releasing the item {item.name} failed") as s:
            mine = sa.true() if anyone else ClaimRow.owner == owner
            return s.execute(sa.delete(ClaimRow).where(ClaimRow.item_id == self._ids[item.id], mine)).rowcount > 0

    # -- pre-annotations ---------------------------------------------------------------------------------------------

    def set_prediction(self, item_id: str, ids: np.ndarray, confidence: float | None = None,
                       model: str | None = None) -> None:
        """Store a pre-annotation (class ids at the image's size), its mean confidence and the model that made it; a
        to-do item becomes pre-annotated, any other keeps its status."""
        item = self.item(item_id)
        self.set_predictions([(item.id, ids, confidence, self.size(item.id))], model)

    def set_predictions(self, predictions: Sequence[tuple[str, np.ndarray, float | None, tuple[int, int]]],
                        model: str | None = None) -> None:
        """`set_prediction` for a batch of (item id, class ids, mean confidence, size of the image they were predicted
        from), in one transaction: all of the batch is stored, or none of it."""
        checked = []
        for item_id, ids, confidence, size in predictions:
            item = self.item(item_id)
            ids = _check_ids(ids, size, item)
            if confidence is not None:
                confidence = float(confidence)
                if not math.isfinite(confidence):
                    raise InputError(f"The confidence of {item.name} must be a finite number, got {confidence}.")
            checked.append((item, _png(ids), confidence, size))
        if not checked:
            return
        names = ", ".join(item.name for item, *_ in checked[:3]) + (" and others" if len(checked) > 3 else "")
        model = clean_text(model, 300) or None
        with self.db.write(f"Storing the pre-annotation of {names} failed") as s:
            now = self.clock()
            rows = [{"item_id": self._ids[item.id], "mask": png, "confidence": confidence, "model": model,
                     "created_at": now} for item, png, confidence, _ in checked]
            insert = self.db.insert(PredictionRow)
            s.connection().execute(insert.on_conflict_do_update(index_elements=[PredictionRow.item_id], set_={
                name: insert.excluded[name] for name in ("mask", "confidence", "model", "created_at")}), rows)
            s.connection().execute(sa.update(ItemRow).where(ItemRow.id == sa.bindparam("row_id")).values(
                confidence=sa.bindparam("confidence"), rank=sa.bindparam("rank"), width=sa.bindparam("width"),
                height=sa.bindparam("height")),
                [{"row_id": self._ids[item.id], "confidence": confidence,
                  "rank": LAST if confidence is None else confidence, "width": size[0], "height": size[1]}
                 for item, _, confidence, size in checked])
            moved = s.execute(sa.update(ItemRow).where(
                ItemRow.id.in_([self._ids[item.id] for item, *_ in checked]), ItemRow.status == TODO)
                .values(status=PREANNOTATED)).rowcount
            self._count(s, {TODO: -moved, PREANNOTATED: moved})

    def predicted(self, item_ids: Sequence[str] | None = None, model: str | None = None) -> set[str]:
        """The ids of the items (of `item_ids`, else of the whole queue) that have a pre-annotation (with `model`, one
        that model made: its identity as stored with it)."""
        with self.db.read("Reading the queue's pre-annotations failed") as s:
            query = sa.select(ItemRow.key).join(PredictionRow, PredictionRow.item_id == ItemRow.id)
            if model is not None:
                query = query.where(PredictionRow.model == clean_text(model, 300))
            if item_ids is None:
                return set(s.scalars(query.where(ItemRow.queue_id == self.queue_id)))
            rows = [self._ids[self.item(item_id).id] for item_id in item_ids]
            return set(s.scalars(query.where(ItemRow.id.in_(rows)))) if rows else set()

    def unfinished(self) -> list[str]:
        """The ids of the items an annotator has still to do (to do, pre-annotated, rejected), not skipped, in queue
        order."""
        with self.db.read("Reading the queue failed") as s:
            return list(s.scalars(sa.select(ItemRow.key).where(ItemRow.queue_id == self.queue_id,
                                                               ItemRow.unfinished.is_(True))
                                  .order_by(ItemRow.position)))

    def preannotate(self, predict: Predictor, progress: Callable[[int, int, QueueItem], None] | None = None,
                    overwrite: bool = False, should_stop: Callable[[], bool] | None = None,
                    model: str | None = None) -> int:
        """Pre-annotate every item without a stored prediction (all with `overwrite`), in queue order; an unreadable
        image is marked (`mark_problem`) and skipped, and the rest goes on.

        Args:
            predict: Photo → class ids (H, W), or (class ids, mean confidence).
            progress: Called after each item with (done, to do, item).
            should_stop: Checked before each item; returning True stops early (what is stored stays).
            model: The identity of the model that predicts (stored with each prediction).
        Returns:
            How many items were pre-annotated.
        """
        stored = set() if overwrite else self.predicted()
        with self.db.read("Reading the queue failed") as s:
            skipped = set(s.scalars(sa.select(ItemRow.key).where(ItemRow.queue_id == self.queue_id,
                                                                   ItemRow.problem.isnot(None))))
        pending = [item for item in self.items if item.id not in stored and item.id not in skipped]
        done = 0
        for number, item in enumerate(pending):
            if should_stop is not None and should_stop():
                return done
            image = self.read_image(item.id)
            if image is not None:
                result = predict(image)
                ids, confidence = result if isinstance(result, tuple) else (result, None)
                self.set_predictions([(item.id, ids, confidence, image.size)], model)
                done += 1
            if progress is not None:
                progress(number + 1, len(pending), item)
        return done

    # -- problems ----------------------------------------------------------------------------------------------------

    def read_image(self, item_id: str) -> PIL.Image.Image | None:
        """The item's photo; None when it cannot be read, after marking the item with the reason (it is then
        skipped until the queue is opened again with the file repaired)."""
        item = self.item(item_id)
        try:
            return self.source.image(item)
        except (InputError, OSError) as error:
            self.mark_problem(item.id, str(error).rstrip(".") or type(error).__name__)
            return None

    def mark_problem(self, item_id: str, reason: str) -> None:
        """Skip the item from now on, saying why (`Progress.problem_items` lists it)."""
        item = self.item(item_id)
        with self.db.write(f"Marking the item {item.name} failed") as s:
            s.execute(sa.update(ItemRow).where(ItemRow.id == self._ids[item.id])
                      .values(problem=clean_text(reason, 300) or "unreadable", unfinished=False))

    def problems(self) -> list[tuple[QueueItem, str]]:
        """Every item skipped for a problem, with the reason, in queue order."""
        with self.db.read("Reading the queue failed") as s:
            rows = s.execute(sa.select(ItemRow.key, ItemRow.problem).where(
                ItemRow.queue_id == self.queue_id, ItemRow.problem.isnot(None)).order_by(ItemRow.position)).all()
        return [(self._by_id[key], why) for key, why in rows if key in self._by_id] + \
            [(QueueItem(key, key, -1), why) for key, why in rows if key not in self._by_id]

    # -- versions ----------------------------------------------------------------------------------------------------

    def save(self, item_id: str, ids: np.ndarray, owner: str, name: str | None = None,
             started_from: str | None = None, seconds: float | None = None, review: bool = False,
             kind: str | None = None, note: str | None = None) -> Version:
        """Store `ids` (class ids at the image's size) as the item's new version; the item becomes corrected, or with
        `review` (a reviewer's correction) accepted. Earlier versions stay.

        Args:
            owner, name: Who saves (their key, and the name others are told).
            started_from: What they corrected: the identity of the model whose prediction it was, or "version N".
            seconds: Time they spent on it since opening the item (or their previous save).
        Raises:
            ItemClaimed: another annotator holds the item (their work is not overwritten).
        """
        item, owner, name = self.item(item_id), _owner(owner), _name(name)
        size = self.size(item.id, f"Saving the mask of {item.name} failed")
        png = _png(_check_ids(ids, size, item))
        seconds = float(seconds) if seconds is not None and math.isfinite(float(seconds)) and seconds >= 0 else None
        kind = kind or (CORRECTION if review else SAVE)
        with self.db.write(f"Saving the mask of {item.name} failed") as s:
            now = self.clock()
            row = self._locked_row(s, item)  # the item's row, then its claim: one order, no deadlock
            self._check_free(s, item, owner, now)
            number = row.versions + 1
            s.execute(sa.insert(VersionRow).values(
                item_id=row.id, number=number, mask=png, author=owner, author_name=name, kind=kind,
                started_from=clean_text(started_from, 300) or None, seconds=seconds,
                note=clean_text(note, 300) or None, created_at=now))
            changes: dict[str, Any] = {"versions": number, "current": number, "updated_at": now,
                                       "width": size[0], "height": size[1]}
            if review:
                agreement = self._agreement(s, row, png)
                s.execute(sa.insert(ReviewRow).values(
                    item_id=row.id, queue_id=self.queue_id, version=number, decision=CORRECT, reviewer=owner,
                    reviewer_name=name, annotator=row.annotator, annotator_name=row.annotator_name,
                    agreement=agreement, created_at=now))
                self._set_status(s, row, ACCEPTED, comment=None, **changes)
            else:
                self._set_status(s, row, CORRECTED, annotator=owner, annotator_name=name, annotator_version=number,
                                 **changes)
        return Version(number, owner, name, kind, started_from, seconds, note, now)

    def history(self, item_id: str) -> list[Version]:
        """Every version of the item, oldest first."""
        item = self.item(item_id)
        with self.db.read(f"Reading the history of {item.name} failed") as s:
            rows = s.execute(sa.select(VersionRow.number, VersionRow.author, VersionRow.author_name, VersionRow.kind,
                                       VersionRow.started_from, VersionRow.seconds, VersionRow.note,
                                       VersionRow.created_at)
                             .where(VersionRow.item_id == self._ids[item.id]).order_by(VersionRow.number)).all()
        return [Version(*row) for row in rows]

    def reviews(self, item_id: str) -> list[Review]:
        """Every review of the item, oldest first."""
        item = self.item(item_id)
        with self.db.read(f"Reading the reviews of {item.name} failed") as s:
            rows = s.execute(sa.select(ReviewRow.decision, ReviewRow.version, ReviewRow.comment, ReviewRow.reviewer,
                                       ReviewRow.reviewer_name, ReviewRow.annotator_name, ReviewRow.agreement,
                                       ReviewRow.created_at)
                             .where(ReviewRow.item_id == self._ids[item.id]).order_by(ReviewRow.id)).all()
        return [Review(*row) for row in rows]

    def version_mask(self, item_id: str, number: Any) -> np.ndarray:
        """The mask of the item's version `number`."""
        item = self.item(item_id)
        try:
            number = int(number)
        except (TypeError, ValueError):
            raise InputError(f"Choose a version of {item.name} by its number, got {number!r}.") from None
        with self.db.read(f"Reading version {number} of {item.name} failed") as s:
            data = s.scalar(sa.select(VersionRow.mask).where(VersionRow.item_id == self._ids[item.id],
                                                             VersionRow.number == number))
        if data is None:
            raise InputError(f"The item {item.name} has no version {number}.")
        return _decode(data)

    def restore(self, item_id: str, number: Any, owner: str, name: str | None = None,
                seconds: float | None = None) -> Version:
        """Make version `number` the item's mask again, as a new version (nothing is overwritten)."""
        ids = self.version_mask(item_id, number)
        return self.save(item_id, ids, owner, name, started_from=f"version {int(number)}", seconds=seconds,
                         kind=RESTORE, note=f"restored version {int(number)}")

    # -- review ------------------------------------------------------------------------------------------------------

    def submit(self, item_id: str, owner: str, name: str | None = None) -> None:
        """Hand the item's current version to the reviewers (it must have been saved since it was last rejected);
        the annotator's claim on it is released."""
        item, owner = self.item(item_id), _owner(owner)
        with self.db.write(f"Submitting the item {item.name} failed") as s:
            now = self.clock()
            row = self._locked_row(s, item)
            self._check_free(s, item, owner, now)
            if row.status == SUBMITTED:
                raise InputError(f"The item {item.name} is already submitted; it waits for a reviewer.")
            if row.status == ACCEPTED:
                raise InputError(f"The item {item.name} is already accepted.")
            if row.status != CORRECTED:
                raise InputError(f"The item {item.name} has no saved mask to submit"
                                 + (" since it was rejected: correct it and save first." if row.status == REJECTED
                                    else ": save it first."))
            self._set_status(s, row, SUBMITTED, comment=None, updated_at=now)
            s.execute(sa.delete(ClaimRow).where(ClaimRow.item_id == row.id, ClaimRow.owner == owner))

    def accept(self, item_id: str, reviewer: str, name: str | None = None) -> None:
        """A reviewer accepts the item's current version as it is."""
        item, reviewer, name = self.item(item_id), _owner(reviewer), _name(name)
        with self.db.write(f"Accepting the item {item.name} failed") as s:
            now = self.clock()
            row = self._locked_row(s, item)
            self._check_free(s, item, reviewer, now)
            if row.status not in (SUBMITTED, CORRECTED):
                raise InputError(f"Only a saved or submitted item can be accepted; the item {item.name} is "
                                 f"{_status_words(row.status)}.")
            agreement = 1.0 if row.current == row.annotator_version else self._agreement(
                s, row, s.scalar(sa.select(VersionRow.mask).where(VersionRow.item_id == row.id,
                                                                  VersionRow.number == row.current)))
            s.execute(sa.insert(ReviewRow).values(
                item_id=row.id, queue_id=self.queue_id, version=row.current, decision=ACCEPT, reviewer=reviewer,
                reviewer_name=name, annotator=row.annotator, annotator_name=row.annotator_name, agreement=agreement,
                created_at=now))
            self._set_status(s, row, ACCEPTED, comment=None, updated_at=now)

    def reject(self, item_id: str, reviewer: str, comment: str, name: str | None = None) -> None:
        """A reviewer sends the item back to its annotator with `comment` (what to fix), which the annotator sees."""
        item, reviewer, name = self.item(item_id), _owner(reviewer), _name(name)
        comment = clean_text(comment, 1000)
        if not comment:
            raise InputError("Write what the annotator should fix: a rejection needs a comment.")
        with self.db.write(f"Rejecting the item {item.name} failed") as s:
            now = self.clock()
            row = self._locked_row(s, item)
            self._check_free(s, item, reviewer, now)
            if row.status not in (SUBMITTED, CORRECTED, ACCEPTED):
                raise InputError(f"Only a saved, submitted or accepted item can be rejected; the item {item.name} is "
                                 f"{_status_words(row.status)}.")
            s.execute(sa.insert(ReviewRow).values(
                item_id=row.id, queue_id=self.queue_id, version=row.current, decision=REJECT, comment=comment,
                reviewer=reviewer, reviewer_name=name, annotator=row.annotator, annotator_name=row.annotator_name,
                created_at=now))
            self._set_status(s, row, REJECTED, comment=comment, updated_at=now)

    def annotators(self) -> list[AnnotatorStats]:
        """Per annotator (by name, else by key): items finished, rejections, median seconds per item and pixel
        agreement with the accepted masks; most items first (reads the queue's versions and reviews)."""
        with self.db.read("Reading the annotators' work failed") as s:
            who = sa.func.coalesce(ItemRow.annotator_name, ItemRow.annotator)
            done = _pairs(s.execute(sa.select(who, sa.func.count()).where(
                ItemRow.queue_id == self.queue_id, ItemRow.status.in_(DONE), ItemRow.annotator.isnot(None))
                .group_by(who)))
            reviewed = sa.func.coalesce(ReviewRow.annotator_name, ReviewRow.annotator)
            rejected = _pairs(s.execute(sa.select(reviewed, sa.func.count()).where(
                ReviewRow.queue_id == self.queue_id, ReviewRow.decision == REJECT, ReviewRow.annotator.isnot(None))
                .group_by(reviewed)))
            agreement = _pairs(s.execute(sa.select(reviewed, sa.func.avg(ReviewRow.agreement)).where(
                ReviewRow.queue_id == self.queue_id, ReviewRow.agreement.isnot(None), ReviewRow.annotator.isnot(None))
                .group_by(reviewed)))
            author = sa.func.coalesce(VersionRow.author_name, VersionRow.author)
            spent = s.execute(sa.select(author, VersionRow.item_id, sa.func.sum(VersionRow.seconds))
                              .join(ItemRow, ItemRow.id == VersionRow.item_id)
                              .where(ItemRow.queue_id == self.queue_id, VersionRow.kind.in_((SAVE, RESTORE)),
                                     VersionRow.seconds.isnot(None))
                              .group_by(author, VersionRow.item_id)).all()
        per_item: dict[str, list[float]] = {}
        for name, _, seconds in spent:
            per_item.setdefault(name, []).append(float(seconds))
        names = sorted(set(done) | set(rejected) | set(per_item), key=lambda n: (-done.get(n, 0), n))
        return [AnnotatorStats(name, done.get(name, 0), rejected.get(name, 0),
                               statistics.median(per_item[name]) if name in per_item else None,
                               float(agreement[name]) if agreement.get(name) is not None else None)
                for name in names]

    # -- opening and exporting ---------------------------------------------------------------------------------------

    def open(self, item_id: str) -> OpenedItem:
        """The photo, the current version, the pre-annotation, the status and the confidence of an item.

        Raises:
            InputError: its image cannot be read (the item is then marked and skipped from now on).
        """
        item = self.item(item_id)
        with self.db.read(f"Opening the item {item.name} failed") as s:
            row = s.execute(sa.select(ItemRow.status, ItemRow.confidence, ItemRow.current, ItemRow.comment,
                                      ItemRow.annotator_name, ItemRow.id).where(ItemRow.id == self._ids[item.id])
                            ).one()
            version = s.scalar(sa.select(VersionRow.mask).where(VersionRow.item_id == row.id,
                                                                VersionRow.number == row.current)) \
                if row.current else None
            prediction = s.execute(sa.select(PredictionRow.mask, PredictionRow.model)
                                   .where(PredictionRow.item_id == row.id)).first()
        image = self.read_image(item.id)
        if image is None:
            raise InputError(f"The item {item.name} cannot be opened: {self.problem(item.id)}. It is skipped from now "
                             f"on; repair or remove its file and reopen the queue.")
        return OpenedItem(item, image, row.status, row.confidence, _decode(version) if version else None,
                          _decode(prediction.mask) if prediction else None, prediction.model if prediction else None,
                          row.current, row.comment if row.status == REJECTED else None, row.annotator_name)

    def entries(self, statuses: Sequence[str] = (ACCEPTED,)) -> Iterator[Entry]:
        """The current version of every item of `statuses` (default: accepted) that is not skipped, in queue order,
        read in chunks (for exports)."""
        with self.db.read("Reading the queue's masks failed") as s:
            result = s.execute(sa.select(ItemRow.key, VersionRow.mask, ItemRow.current, ItemRow.annotator_name,
                                         ItemRow.annotator, ItemRow.status, VersionRow.created_at)
                               .join(VersionRow, sa.and_(VersionRow.item_id == ItemRow.id,
                                                         VersionRow.number == ItemRow.current))
                               .where(ItemRow.queue_id == self.queue_id, ItemRow.status.in_(list(statuses)),
                                      ItemRow.problem.is_(None))
                               .order_by(ItemRow.position).execution_options(yield_per=64))
            for key, data, version, name, annotator, status, saved_at in result:
                if key in self._by_id:
                    yield Entry(self._by_id[key], _decode(data), version, name or annotator, status, saved_at)

    def masks(self, statuses: Sequence[str] = (ACCEPTED,)) -> Iterator[tuple[QueueItem, np.ndarray]]:
        """(item, current mask) of every item of `statuses` (default: accepted), in queue order (`entries`)."""
        return ((entry.item, entry.ids) for entry in self.entries(statuses))

    def corrected_masks(self) -> Iterator[tuple[QueueItem, np.ndarray]]:
        """(item, current mask) of every finished item (corrected, submitted or accepted), in queue order."""
        return self.masks(DONE)

    # --- internals --------------------------------------------------------------------------------------------------

    def _sync(self) -> None:
        """Add the queue and its new items (named once: names stay), update positions, mark items that left the
        source and unmark those back; import the folder-based store's state on first opening."""
        source, items = self.source, self.source.items
        with self.db.write("Opening the queue failed") as s:
            now = self.clock()
            s.execute(self.db.insert(QueueRow).values(key=source.key, title=source.title, created_at=now)
                      .on_conflict_do_nothing(index_elements=[QueueRow.key]))
            query = sa.select(QueueRow.id).where(QueueRow.key == source.key)
            self.queue_id = s.scalar(query.with_for_update() if self.db.dialect == "postgresql" else query)
            s.connection().execute(self.db.insert(CountRow).on_conflict_do_nothing(),
                      [{"queue_id": self.queue_id, "status": status, "count": 0} for status in STATUSES])
            existing = {row.key: row for row in s.execute(sa.select(
                ItemRow.id, ItemRow.key, ItemRow.name, ItemRow.position, ItemRow.problem, ItemRow.status)
                .where(ItemRow.queue_id == self.queue_id))}
            folder = legacy.queue_folder(self.root, source.key, source.title) if self.root is not None else None
            names = {key: row.name for key, row in existing.items()}
            if folder is not None:
                names = {**{k: v for k, v in folder.names.items() if k not in names}, **names}
            taken = set(names.values())
            new = []
            for item in items:
                if item.id in existing:
                    continue
                name = names.get(item.id)  # a name the folder-based store gave it
                if name is None:
                    name, number = item.name, item.index
                    while name in taken:
                        name, number = f"{item.name}_{number}", number + 1
                    taken.add(name)
                    names[item.id] = name
                new.append({"queue_id": self.queue_id, "key": item.id, "name": name, "position": item.index,
                            "status": TODO, "unfinished": True, "rank": LAST, "versions": 0})
            for first in range(0, len(new), 5000):
                s.connection().execute(sa.insert(ItemRow), new[first : first + 5000])
            self._count(s, {TODO: len(new)})
            listed = {item.id: item for item in items}
            moved = [{"row_id": row.id, "position": listed[key].index} for key, row in existing.items()
                     if key in listed and row.position != listed[key].index]
            if moved:
                s.connection().execute(sa.update(ItemRow).where(ItemRow.id == sa.bindparam("row_id"))
                                       .values(position=sa.bindparam("position")), moved)
            gone = [row.id for key, row in existing.items() if key not in listed and row.problem != VANISHED]
            back = [row.id for key, row in existing.items() if key in listed and row.problem == VANISHED]
            for first in range(0, len(gone), 5000):
                s.execute(sa.update(ItemRow).where(ItemRow.id.in_(gone[first : first + 5000]))
                          .values(problem=VANISHED, unfinished=False))
            for first in range(0, len(back), 5000):
                s.execute(sa.update(ItemRow).where(ItemRow.id.in_(back[first : first + 5000]))
                          .values(problem=None, unfinished=ItemRow.status.in_(UNFINISHED)))
            self._ids = _pairs(s.execute(sa.select(ItemRow.key, ItemRow.id).where(ItemRow.queue_id == self.queue_id)))
            if folder is not None:
                self._import(s, folder, names, now)
        self.items = [QueueItem(item.id, names[item.id], item.index) for item in items]
        self._by_id = {item.id: item for item in self.items}
        if folder is not None:
            folder.mark_imported(self.db.label)

    def _import(self, s: Session, folder: legacy.QueueFolder, names: dict[str, str], now: float) -> None:
        """The folder-based store's statuses, predictions, masks (each a first version) and live claims, for the
        items still at to do here (so that a second import adds nothing)."""
        fresh = set(s.scalars(sa.select(ItemRow.key).where(ItemRow.queue_id == self.queue_id, ItemRow.status == TODO,
                                                           ItemRow.versions == 0)))
        moves: dict[str, int] = {}
        for key, row_id in self._ids.items():
            if key not in fresh or key not in names:
                continue
            name = names[key]
            status = folder.status(key, name)
            record = folder.records.get(key, {})
            changes: dict[str, Any] = {}
            prediction = folder.prediction(name)
            if prediction is not None:
                data, stored = prediction
                confidence = record.get("confidence", stored)
                confidence = float(confidence) if isinstance(confidence, (int, float)) else stored
                s.execute(sa.insert(PredictionRow).values(item_id=row_id, mask=data, confidence=confidence,
                                                          model=None, created_at=now))
                changes.update(confidence=confidence, rank=LAST if confidence is None else confidence)
            mask = folder.mask(name) if status in legacy.FINISHED_BEFORE else None
            if mask is not None:
                author = clean_text(record.get("by"), 100) or "imported"
                s.execute(sa.insert(VersionRow).values(
                    item_id=row_id, number=1, mask=mask, author=author, author_name=None, kind=IMPORT,
                    note="imported from the queue's folder", created_at=folder.updated(key, name) or now))
                changes.update(versions=1, current=1, annotator=author, annotator_version=1,
                               updated_at=folder.updated(key, name))
            elif status in legacy.FINISHED_BEFORE:
                status = PREANNOTATED if prediction is not None else TODO
            if status != TODO:
                changes.update(status=status, unfinished=status in UNFINISHED)
                moves[TODO] = moves.get(TODO, 0) - 1
                moves[status] = moves.get(status, 0) + 1
            if changes:
                s.execute(sa.update(ItemRow).where(ItemRow.id == row_id).values(**changes))
        claims = [{"item_id": self._ids[key], "queue_id": self.queue_id, "owner": clean_text(claim.get("owner"), 100),
                   "owner_name": None, "expires": float(claim["expires"])}
                  for key, claim in folder.claims.items()
                  if key in self._ids and isinstance(claim.get("expires"), (int, float)) and
                  claim["expires"] > now and clean_text(claim.get("owner"), 100)]
        if claims:
            s.connection().execute(self.db.insert(ClaimRow).on_conflict_do_nothing(), claims)
        self._count(s, moves)

    def _retry_problems(self) -> None:
        """Items marked unreadable are tried again at opening: a repaired file brings its item back."""
        with self.db.read("Opening the queue failed") as s:
            rows = s.execute(sa.select(ItemRow.key, ItemRow.id).where(
                ItemRow.queue_id == self.queue_id, ItemRow.problem.isnot(None), ItemRow.problem != VANISHED)).all()
        back = []
        for key, row_id in rows:
            if key in self._by_id:
                try:
                    self.source.image(self._by_id[key])
                    back.append(row_id)
                except (InputError, OSError):
                    continue
        if back:
            with self.db.write("Opening the queue failed") as s:
                s.execute(sa.update(ItemRow).where(ItemRow.id.in_(back))
                          .values(problem=None, unfinished=ItemRow.status.in_(UNFINISHED)))

    def _row(self, item_id: str, column):
        item = self.item(item_id)
        with self.db.read("Reading the queue failed") as s:
            return s.scalar(sa.select(column).where(ItemRow.id == self._ids[item.id]))

    def _order_columns(self, sort: str) -> tuple:
        if sort == QUEUE_ORDER:
            return (ItemRow.position,)
        if sort == WORST_FIRST:
            return (ItemRow.rank, ItemRow.position)
        raise ValueError(f"sort must be one of {SORTS}, got {sort!r}")

    def _walk(self, s: Session, current: str | None, step: int, sort: str, unfinished: bool, wrap: bool,
              status: str | None, owner: str | None = None, name: str | None = None,
              now: float | None = None) -> Iterator[Any]:
        """The items after (`step` 1) or before (-1) `current` in the order `sort`, then (with `unfinished` or `wrap`)
        around from the other end back to it; only those `unfinished` or of `status`, never one skipped for a
        problem; with `owner`, none held by another annotator (nor, with `unfinished`, rejected work of another).
        Read `_BATCH` at a time along an index."""
        if step not in (1, -1):
            raise ValueError(f"step must be 1 (next) or -1 (previous), got {step!r}")
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        columns = self._order_columns(sort)
        query = sa.select(ItemRow.id, ItemRow.key, *columns).where(ItemRow.queue_id == self.queue_id)
        if unfinished:
            query = query.where(ItemRow.unfinished.is_(True))
            if owner is not None:
                mine = sa.or_(ItemRow.annotator == owner, ItemRow.annotator_name == name) if name else \
                    ItemRow.annotator == owner
                query = query.where(sa.or_(ItemRow.status != REJECTED, ItemRow.annotator.is_(None), mine))
        else:
            query = query.where(ItemRow.problem.is_(None))
        if status is not None:
            query = query.where(ItemRow.status == status)
        if owner is not None:
            query = query.outerjoin(ClaimRow, sa.and_(ClaimRow.item_id == ItemRow.id, ClaimRow.expires > now,
                                                      ClaimRow.owner != owner)).where(ClaimRow.item_id.is_(None))
        query = query.order_by(*[column if step == 1 else column.desc() for column in columns])
        start = None
        if current is not None:
            item = self.item(current)
            start = tuple(s.execute(sa.select(*columns).where(ItemRow.id == self._ids[item.id])).one())
        phases = [(start, None)]
        if start is not None and (unfinished or wrap):
            phases.append((None, start))
        for after, until in phases:
            while True:
                batch = query
                if after is not None:
                    batch = batch.where(_beyond(columns, after, step))
                if until is not None:
                    batch = batch.where(_beyond(columns, until, -step))
                rows = s.execute(batch.limit(_BATCH)).all()
                yield from rows
                if len(rows) < _BATCH:
                    break
                after = tuple(rows[-1][2:])

    def _take(self, s: Session, row_id: int, owner: str, name: str | None, now: float,
              wanted: Callable[[Session, int], bool] | None = None) -> bool:
        """Claim the item for `owner` unless another annotator's claim on it is live (one statement, so two servers
        can never both take it) and, with `wanted`, unless the item no longer is what was looked for (another server
        changed it since it was read: the claim is undone); then release `owner`'s other claims in the queue."""
        insert = self.db.insert(ClaimRow).values(item_id=row_id, queue_id=self.queue_id, owner=owner,
                                                 owner_name=name, expires=now + self.claim_seconds)
        attempt = s.begin_nested()
        taken = s.execute(insert.on_conflict_do_update(
            index_elements=[ClaimRow.item_id],
            set_={"owner": owner, "owner_name": name, "expires": now + self.claim_seconds},
            where=sa.or_(ClaimRow.expires <= now, ClaimRow.owner == owner)).returning(ClaimRow.item_id)).first()
        if taken is None or (wanted is not None and not wanted(s, row_id)):
            attempt.rollback()
            return False
        attempt.commit()
        s.execute(sa.delete(ClaimRow).where(ClaimRow.queue_id == self.queue_id, ClaimRow.owner == owner,
                                            ClaimRow.item_id != row_id))
        return True

    def _still_wanted(self, s: Session, row_id: int, unfinished: bool, status: str | None, owner: str,
                      name: str | None) -> bool:
        """Whether the item, read again now that it is claimed (no one else can change it any more), is still one
        that the walk looked for: with several servers, what the walk read may have changed before the claim."""
        row = s.execute(sa.select(ItemRow.status, ItemRow.unfinished, ItemRow.problem, ItemRow.annotator,
                                  ItemRow.annotator_name).where(ItemRow.id == row_id)).one()
        if row.problem is not None or (status is not None and row.status != status):
            return False
        if unfinished:
            theirs = row.status == REJECTED and row.annotator is not None and row.annotator != owner and \
                not (name and row.annotator_name == name)
            return row.unfinished and not theirs
        return True

    def _claimed_message(self, s: Session, item: QueueItem, now: float) -> str:
        holder = s.get(ClaimRow, self._ids[item.id])
        who = (holder.owner_name if holder is not None else None) or "another annotator"
        return (f"The item {item.name} is being annotated by {who} now; pick another item (the claim lapses about a "
                f"minute after their tab closes, and a reviewer can release it).")

    def _check_free(self, s: Session, item: QueueItem, owner: str, now: float) -> None:
        query = sa.select(ClaimRow.owner).where(ClaimRow.item_id == self._ids[item.id], ClaimRow.expires > now)
        holder = s.scalar(query.with_for_update() if self.db.dialect == "postgresql" else query)
        if holder is not None and holder != owner:
            raise ItemClaimed(self._claimed_message(s, item, now))

    def _locked_row(self, s: Session, item: QueueItem) -> ItemRow:
        query = sa.select(ItemRow).where(ItemRow.id == self._ids[item.id])
        return s.scalars(query.with_for_update() if self.db.dialect == "postgresql" else query).one()

    def _set_status(self, s: Session, row: ItemRow, status: str, **changes: Any) -> None:
        """Change the item's row, its status kept in the queue's counts and its `unfinished` flag."""
        old = row.status
        s.execute(sa.update(ItemRow).where(ItemRow.id == row.id).values(
            status=status, unfinished=status in UNFINISHED and row.problem is None, **changes))
        if old != status:
            self._count(s, {old: -1, status: 1})

    def _count(self, s: Session, changes: dict[str, int]) -> None:
        """Add to the queue's counts (statuses in one order, so that two transactions never wait on each other)."""
        for status in sorted(changes):
            if changes[status]:
                s.execute(sa.update(CountRow).where(CountRow.queue_id == self.queue_id, CountRow.status == status)
                          .values(count=CountRow.count + changes[status]))

    def _agreement(self, s: Session, row: ItemRow, png: bytes | None) -> float | None:
        """Share of pixels where the annotator's last version agrees with `png` (None without both)."""
        if row.annotator_version is None or png is None:
            return None
        theirs = s.scalar(sa.select(VersionRow.mask).where(VersionRow.item_id == row.id,
                                                           VersionRow.number == row.annotator_version))
        if theirs is None:
            return None
        a, b = _decode(theirs), _decode(png)
        return float((a == b).mean()) if a.shape == b.shape else 0.0


def _beyond(columns: tuple, values: tuple, step: int):
    """Rows after (`step` 1) or before (-1) `values` in the order of `columns`."""
    if len(columns) == 1:
        return columns[0] > values[0] if step == 1 else columns[0] < values[0]
    left, right = sa.tuple_(*columns), sa.tuple_(*values)
    return left > right if step == 1 else left < right


def _status_words(status: str) -> str:
    from .queue_words import STATUS_NAMES

    return STATUS_NAMES.get(status, status)


def _owner(owner: str) -> str:
    text = clean_text(owner, 100)
    if not text:
        raise InputError("Please enter your name (annotator) before claiming items.")
    return text


def _name(name: str | None) -> str | None:
    return clean_text(name, 100) or None


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


def _png(ids: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PIL.Image.fromarray(ids).save(buffer, format="PNG")
    return buffer.getvalue()


def _decode(data: bytes) -> np.ndarray:
    with PIL.Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("L")).copy()


def _pairs(result) -> dict:
    """A two-column result as a dict."""
    return {row[0]: row[1] for row in result}
