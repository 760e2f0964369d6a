"""The annotation store's tables (SQLAlchemy 2): queues and their items, claims, pre-annotations, every saved version
of a mask, reviews, and the photos saved one at a time. Times are seconds since the epoch (UTC)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Item statuses as stored (what the page calls them is `app.queue_words`'s). An annotator saves a version
# (corrected) and submits it; a reviewer accepts it, corrects it (a new version, accepted) or rejects it with a
# comment, which sends it back to its annotator.
TODO, PREANNOTATED, CORRECTED, SUBMITTED, ACCEPTED, REJECTED = (
    "todo", "preannotated", "corrected", "submitted", "accepted", "rejected")
STATUSES = (TODO, PREANNOTATED, CORRECTED, SUBMITTED, ACCEPTED, REJECTED)
DONE = (CORRECTED, SUBMITTED, ACCEPTED)  # what "37 / 233 corrected" counts: an annotator has finished them
UNFINISHED = (TODO, PREANNOTATED, REJECTED)  # what "Next unfinished" offers an annotator
# Review decisions and kinds of version.
ACCEPT, REJECT, CORRECT = "accept", "reject", "correct"
SAVE, RESTORE, CORRECTION, IMPORT = "save", "restore", "correction", "import"
LAST = 1e30  # the worst-first rank of an item without a confidence: after every item that has one


class Base(DeclarativeBase):
    pass


class QueueRow(Base):
    """A work queue: the images of one source (a folder, an imagefolder, a dataset split)."""

    __tablename__ = "queues"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(Text, unique=True)  # the source's key (`queue_sources.Source.key`)
    title: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Double)


class CountRow(Base):
    """How many items of a queue have each status, kept with every change so that progress reads one row each."""

    __tablename__ = "queue_counts"
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class ItemRow(Base):
    """One image of a queue and where its work stands.

    `unfinished` is kept equal to (status in `UNFINISHED` and no problem) and `rank` to the confidence (`LAST` without
    one), so that every order and filter the queue offers walks an index.
    """

    __tablename__ = "items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(Text)  # stable id in the source (`QueueItem.id`)
    name: Mapped[str] = mapped_column(Text)  # given once, kept (exports name the item by it)
    position: Mapped[int] = mapped_column(Integer)  # in the source's natural order
    status: Mapped[str] = mapped_column(String(20), default=TODO)
    unfinished: Mapped[bool] = mapped_column(Boolean, default=True)
    confidence: Mapped[float | None] = mapped_column(Double, nullable=True)
    rank: Mapped[float] = mapped_column(Double, default=LAST)
    problem: Mapped[str | None] = mapped_column(Text, nullable=True)  # why it is skipped (unreadable, vanished)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    versions: Mapped[int] = mapped_column(Integer, default=0)  # how many versions were saved
    current: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the version that is the item's mask
    annotator: Mapped[str | None] = mapped_column(Text, nullable=True)  # who saved the annotator's last version
    annotator_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    annotator_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)  # the last rejection's, while rejected
    updated_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    __table_args__ = (
        UniqueConstraint("queue_id", "key", name="uq_items_queue_key"),
        UniqueConstraint("queue_id", "name", name="uq_items_queue_name"),
        Index("ix_items_order", "queue_id", "position"),
        Index("ix_items_worst", "queue_id", "rank", "position"),
        Index("ix_items_unfinished_order", "queue_id", "unfinished", "position"),
        Index("ix_items_unfinished_worst", "queue_id", "unfinished", "rank", "position"),
        Index("ix_items_status_order", "queue_id", "status", "position"),
        Index("ix_items_status_worst", "queue_id", "status", "rank", "position"),
        Index("ix_items_problem", "queue_id", "position", sqlite_where=text("problem IS NOT NULL"),
              postgresql_where=text("problem IS NOT NULL")),
    )


class ClaimRow(Base):
    """An item held by one annotator until `expires` (a lease their open tab renews)."""

    __tablename__ = "claims"
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"))
    owner: Mapped[str] = mapped_column(Text)  # the annotator's key: a signed-in name, or a browser's id
    owner_name: Mapped[str | None] = mapped_column(Text, nullable=True)  # what others are told
    expires: Mapped[float] = mapped_column(Double)
    __table_args__ = (Index("ix_claims_owner", "queue_id", "owner"),)


class PredictionRow(Base):
    """An item's pre-annotation: class ids as an "L" PNG, its mean confidence and the model that made it."""

    __tablename__ = "predictions"
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    mask: Mapped[bytes] = mapped_column(LargeBinary)
    confidence: Mapped[float | None] = mapped_column(Double, nullable=True)
    model: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Double)


class VersionRow(Base):
    """One saved mask of an item (class ids as an "L" PNG); versions are only ever added.

    Attributes:
        started_from: What the person corrected: the model that made the prediction, or an earlier version.
        seconds: Time from opening the item (or the previous save) to this save.
    """

    __tablename__ = "versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    mask: Mapped[bytes] = mapped_column(LargeBinary)
    author: Mapped[str] = mapped_column(Text)
    author_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    kind: Mapped[str] = mapped_column(String(20), default=SAVE)
    started_from: Mapped[str | None] = mapped_column(Text, nullable=True)
    seconds: Mapped[float | None] = mapped_column(Double, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Double)
    __table_args__ = (UniqueConstraint("item_id", "number", name="uq_versions_item_number"),)


class ReviewRow(Base):
    """A reviewer's decision on an item's version: accepted, corrected (the correction is a version) or rejected.

    Attributes:
        agreement: Share of pixels where the annotator's version agrees with the accepted mask (None for a rejection).
    """

    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"))
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decision: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    reviewer: Mapped[str] = mapped_column(Text)
    reviewer_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    annotator: Mapped[str | None] = mapped_column(Text, nullable=True)
    annotator_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    agreement: Mapped[float | None] = mapped_column(Double, nullable=True)
    created_at: Mapped[float] = mapped_column(Double)
    __table_args__ = (Index("ix_reviews_item", "item_id"), Index("ix_reviews_queue", "queue_id"))


class SavedRow(Base):
    """A photo saved with its mask by **Save image + corrected mask** (or /save_annotation): its files stay in the
    annotation folder `folder` (an imagefolder dataset); `row` is its metadata row."""

    __tablename__ = "saved"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    folder: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    row: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Double)
    pushed_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    __table_args__ = (UniqueConstraint("folder", "name", name="uq_saved_folder_name"),)
