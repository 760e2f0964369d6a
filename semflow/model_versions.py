"""A workspace's model versions: numbered model folders (``models/v1``, ``models/v2`` …) of one base model, which one
serves, and the record of each promotion, so a page can serve the current one and roll back to the one before."""

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

    @property
    def base(self) -> str | None:
        """The name of the model the first version was trained from (None before a promotion)."""
        return self._record().get("base")

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

    def entry(self, version: str | None) -> dict[str, Any] | None:
        """The record of one promotion (its name, when, what it replaced, its figures), or None."""
        return next((v for v in self.versions() if v["version"] == version), None)

    def promote(self, model: str | os.PathLike, figures: dict[str, Any], ignore: Iterable[str] = (),
                base: str | None = None) -> str:
        """Copy the trained `model` folder (not what matches the `ignore` patterns: a run's checkpoints and logs) as
        the next version, note `figures` on its card, and serve it; returns its name. `base` names the model the
        workspace's versions descend from (kept from the first promotion on).

        Raises:
            ValueError: `base` is not the workspace's base model.
        """
        record = self._record()
        if base is not None and record.get("base") not in (None, base):
            raise ValueError(f"this workspace holds versions of {record['base']}, not of {base}")
        if record.get("base") is None:
            record["base"] = base
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


def version_of(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The promotion record of a model folder that is a workspace's version (``<workspace>/models/v2``), with the
    workspace's base model as ``base``; None for any other folder."""
    folder = Path(folder).resolve()
    path = folder.parent / VERSIONS_FILE
    if folder.parent.name != MODELS_FOLDER or not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        entry = next((v for v in record.get("versions", []) if v.get("version") == folder.name), None)
    except (ValueError, AttributeError, TypeError):
        return None
    return None if entry is None else {**entry, "base": record.get("base")}


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
