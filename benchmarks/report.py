"""How a benchmark hands back its results: the Markdown table printed, and the whole record as JSON on request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def publish(results: dict[str, Any], out: Path | None = None) -> dict[str, Any]:
    """Print ``results["markdown"]``; with `out`, also write `results` there as JSON (folders made). Returns
    `results`."""
    print(results["markdown"])
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
    return results
