"""What the work queue's codes are called where people read them (the page, the command line): statuses, orders,
review decisions and the progress line."""

from __future__ import annotations

from .work_queue import (
    ACCEPTED,
    CORRECTED,
    PREANNOTATED,
    QUEUE_ORDER,
    REJECTED,
    SUBMITTED,
    TODO,
    WORST_FIRST,
    Progress,
)

STATUS_NAMES = {TODO: "to do", PREANNOTATED: "pre-annotated", CORRECTED: "corrected", SUBMITTED: "submitted",
                ACCEPTED: "accepted", REJECTED: "rejected"}
SORT_NAMES = {QUEUE_ORDER: "queue order", WORST_FIRST: "worst first"}
SORT_CHOICES = [(name, code) for code, name in SORT_NAMES.items()]  # a dropdown's (shown, value) pairs
ALL = "all"  # the status filter that keeps every item
FILTER_CHOICES = [("every item", ALL), *((name, code) for code, name in STATUS_NAMES.items())]
DECISION_NAMES = {"accept": "accepted", "correct": "corrected and accepted", "reject": "rejected"}


def progress_line(progress: Progress) -> str:
    """E.g. ``"37 / 233 corrected"`` (corrected, submitted and accepted items count as done)."""
    return f"{progress.done} / {progress.total} {STATUS_NAMES[CORRECTED]}"


def counts_line(progress: Progress) -> str:
    """E.g. ``"2 to do, 1 corrected"``: the statuses present, in their order; then the items skipped for a problem,
    with the first few named and why (``"1 skipped: fake (not a readable image file)"``)."""
    parts = [f"{n} {STATUS_NAMES[status]}" for status, n in progress.counts.items() if n]
    if progress.problems:
        named = "; ".join(f"{name} ({why})" for name, why in progress.problem_items)
        more = "; …" if progress.problems > len(progress.problem_items) else ""
        parts.append(f"{progress.problems} skipped: {named}{more}")
    return ", ".join(parts)
