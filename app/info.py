"""What the page and /model_info say about the model: its one description (`LoadedModel.describe`), with the server's
paths left out (a local dataset or run folder shown by its last part)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from semflow.description import describe_markdown
from semflow.loading import LoadedModel

from .learning import FIGURES

VERSION_FIELDS = ("version", "base", "promoted_at", "replaces", "training_items", *sorted(FIGURES))
_COMMAND = re.compile(r"\s*Reproduce: `[^`]*`\.?")  # how figures were made: a command with server paths
_CODE = re.compile(r"`([^`\s]+)`")


def model_info(model: LoadedModel) -> dict[str, Any]:
    """/model_info: `LoadedModel.describe`, every dataset named as a visitor may see it (`public`); for a learned
    version, which one it is and its figures."""
    description = copy.deepcopy(model.describe())
    if model.version is not None:  # a learned version: which, of what, and its figures (never the server's paths)
        description["version"] = {key: model.version[key] for key in VERSION_FIELDS if key in model.version}
    for part in ("training_data", "evaluation"):
        if description.get(part) and description[part].get("dataset"):
            description[part]["dataset"] = _public_name(str(description[part]["dataset"]))
    return description


def model_info_markdown(model: LoadedModel) -> str:
    """The page's model-info panel: the model's identity (never a path), a fallback's notice, and its description."""
    description = model.describe()
    lines = [f"**Model**: `{description['model']}` @ `{description['revision']}` ({description['formulation']} "
             f"formulation)", describe_markdown(description)]
    if model.version is not None:
        lines.insert(1, version_markdown(model.version))
    if description["notice"]:
        lines.insert(0, f"⚠️ {description['notice']}")
    return public("\n\n".join(lines))


def version_markdown(version: dict[str, Any]) -> str:
    """A learned version in a line: of which model, what it learned from and how it scored against the model it
    replaced on the held-back corrected items."""
    line = f"**Learned version** {version.get('version')} of `{version.get('base') or 'the base model'}`"
    if "training_items" in version:
        line += f", fine-tuned on {version['training_items']} corrected items"
    if FIGURES <= version.keys():
        line += (f"; {version['new_miou']} mIoU on the {version['held_back_items']} latest ones, held back, against "
                 f"{version['current_miou']} for the model it replaced ({version['gain']:+})")
    if version.get("promoted_at"):
        line += f"; promoted {version['promoted_at']}"
    return line + "."


def public(text: str) -> str:
    """`text` as a visitor may see it: the card's "Reproduce:" commands left out, and a local path in code (a dataset
    or run folder on the server, `../shared/datasets/camvid`) shown by its last part (`camvid`). Hub ids stay."""
    text = _COMMAND.sub("", text)
    return _CODE.sub(lambda match: f"`{_public_name(match[1])}`", text)


def _public_name(token: str) -> str:
    if "/" not in token:
        return token
    local = token.startswith((".", "/", "~")) or Path(token).expanduser().exists()
    return Path(token.rstrip("/")).name if local else token
