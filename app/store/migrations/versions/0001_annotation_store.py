"""The annotation store: queues, their items and status counts, claims, pre-annotations, versions, reviews and the
photos saved one at a time.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queues",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.Text(), nullable=False, unique=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
    )
    op.create_table(
        "queue_counts",
        sa.Column("queue_id", sa.Integer(), sa.ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("status", sa.String(20), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
    )
    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("queue_id", sa.Integer(), sa.ForeignKey("queues.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("unfinished", sa.Boolean(), nullable=False),
        sa.Column("confidence", sa.Double(), nullable=True),
        sa.Column("rank", sa.Double(), nullable=False),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("versions", sa.Integer(), nullable=False),
        sa.Column("current", sa.Integer(), nullable=True),
        sa.Column("annotator", sa.Text(), nullable=True),
        sa.Column("annotator_name", sa.Text(), nullable=True),
        sa.Column("annotator_version", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.Double(), nullable=True),
        sa.UniqueConstraint("queue_id", "key", name="uq_items_queue_key"),
        sa.UniqueConstraint("queue_id", "name", name="uq_items_queue_name"),
    )
    for name, columns in (("ix_items_order", ["queue_id", "position"]),
                          ("ix_items_worst", ["queue_id", "rank", "position"]),
                          ("ix_items_unfinished_order", ["queue_id", "unfinished", "position"]),
                          ("ix_items_unfinished_worst", ["queue_id", "unfinished", "rank", "position"]),
                          ("ix_items_status_order", ["queue_id", "status", "position"]),
                          ("ix_items_status_worst", ["queue_id", "status", "rank", "position"])):
        op.create_index(name, "items", columns)
    op.create_index("ix_items_problem", "items", ["queue_id", "position"],
                    sqlite_where=sa.text("problem IS NOT NULL"), postgresql_where=sa.text("problem IS NOT NULL"))
    op.create_table(
        "claims",
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("queue_id", sa.Integer(), sa.ForeignKey("queues.id", ondelete="CASCADE"), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("owner_name", sa.Text(), nullable=True),
        sa.Column("expires", sa.Double(), nullable=False),
    )
    op.create_index("ix_claims_owner", "claims", ["queue_id", "owner"])
    op.create_table(
        "predictions",
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("mask", sa.LargeBinary(), nullable=False),
        sa.Column("confidence", sa.Double(), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
    )
    op.create_table(
        "versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("mask", sa.LargeBinary(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("author_name", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("started_from", sa.Text(), nullable=True),
        sa.Column("seconds", sa.Double(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.UniqueConstraint("item_id", "number", name="uq_versions_item_number"),
    )
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
        sa.Column("queue_id", sa.Integer(), sa.ForeignKey("queues.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("reviewer", sa.Text(), nullable=False),
        sa.Column("reviewer_name", sa.Text(), nullable=True),
        sa.Column("annotator", sa.Text(), nullable=True),
        sa.Column("annotator_name", sa.Text(), nullable=True),
        sa.Column("agreement", sa.Double(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
    )
    op.create_index("ix_reviews_item", "reviews", ["item_id"])
    op.create_index("ix_reviews_queue", "reviews", ["queue_id"])
    op.create_table(
        "saved",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("folder", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("row", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("pushed_at", sa.Double(), nullable=True),
        sa.UniqueConstraint("folder", "name", name="uq_saved_folder_name"),
    )


def downgrade() -> None:
    for table in ("saved", "reviews", "versions", "predictions", "claims", "items", "queue_counts", "queues"):
        op.drop_table(table)
