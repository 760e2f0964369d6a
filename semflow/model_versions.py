"""A workspace's model versions: numbered model folders (``models/v1``, ``models/v2`` …), which one serves, and the
record of each promotion, so a page can serve the current one and roll back to the one before."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

MODELS_FOLDER, VERSIONS_FILE, CARD_FILE = "models", "versions.json", "README.md"


class ModelVersions:
    """The versions under ``<workspace>/models``; ``versions.json`` names the one in use (none: the base model the
    workspace started from) and keeps every promotion and roll-back, so nothing is lost."""

    def __init__(self, workspace: str | os.PathLike) -> None:
        self.root = Path(workspace)
        self.folder = self.root / MODELS_FOLDER

    def _record(self) -> dict[str, Any]:
        path = self.folder / VERSIONS_FILE
        return json.loads(path.read_text()) if path.is_file() else {"current": None, "versions": [], "events": []}

    def _write(self, record: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / (VERSIONS_FILE + ".tmp")
        tmp.write_text(json.dumps(record, indent=2))
        os.replace(tmp, self.folder / VERSIONS_FILE)  # whole or not at all

    @property
    def current(self) -> str | None:
        """The version in use (``"v2"``), or None for the base model."""
        return self._record()["current"]

    def current_folder(self) -> Path | None:
        """The model folder in use, or None for the base model."""
        current = self.current
        return self.folder / current if current else None

    def versions(self) -> list[dict[str, Any]]:
        """Every promoted version, oldest first: its name, when, what it started from and its figures."""
        return self._record()["versions"]

    def promote(self, model: str | os.PathLike, figures: dict[str, Any], ignore: Iterable[str] = ()) -> str:
        """Copy the trained `model` folder (not what matches the `ignore` patterns: a run's checkpoints and logs) as
        the next version, note `figures` on its card, and serve it; returns its name."""
        record = self._record()
        name = f"v{len(record['versions']) + 1}"
        target = self.folder / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(model, target, ignore=shutil.ignore_patterns(*ignore))
        entry = {"version": name, "promoted_at": _now(), "replaces": record["current"], **figures}
        card = target / CARD_FILE
        card.write_text((card.read_text() if card.is_file() else "") + "\n\n## Promotion\n\n" +
                        "\n".join(f"- {key.replace('_', ' ')}: {value}" for key, value in entry.items()) + "\n")
        record["versions"].append(entry)
        record["events"].append({"event": "promoted", "version": name, "at": entry["promoted_at"]})
        record["current"] = name
        self._write(record)
        return name

    def roll_back(self) -> str | None:
        """Serve the version the current one replaced (None: the base model); returns it.

        Raises:
            ValueError: the base model is already in use.
        """
        record = self._record()
        if record["current"] is None:
            raise ValueError("the base model is in use: there is no earlier version to roll back to")
        replaced = next(v["replaces"] for v in record["versions"] if v["version"] == record["current"])
        record["events"].append({"event": "rolled back", "from": record["current"], "to": replaced, "at": _now()})
        record["current"] = replaced
        self._write(record)
        return replaced


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
