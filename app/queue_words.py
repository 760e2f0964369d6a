"""What the work queue's codes are called where people read them (the page, the command line): statuses, orders and
the progress line."""

from __future__ import annotations

from .work_queue import CORRECTED, PREANNOTATED, QUEUE_ORDER, REVIEWED, TODO, WORST_FIRST, Progress

STATUS_NAMES = {TODO: "to do", PREANNOTATED: "pre-annotated", CORRECTED: "corrected", REVIEWED: "reviewed"}
SORT_NAMES = {QUEUE_ORDER: "queue order", WORST_FIRST: "worst first"}
SORT_CHOICES = [(name, code) for code, name in SORT_NAMES.items()]  # a dropdown's (shown, value) pairs


def progress_line(progress: Progress) -> str:
    """E.g. ``"37 / 233 corrected"`` (corrected and reviewed items count as done)."""
    return f"{progress.done} / {progress.total} {STATUS_NAMES[CORRECTED]}"


def counts_line(progress: Progress) -> str:
    """E.g. ``"2 to do, 1 corrected"``: the statuses present, in their order."""
    return ", ".join(f"{n} {STATUS_NAMES[status]}" for status, n in progress.counts.items() if n)
