"""What the page and /model_info say about the model: its one description (`LoadedModel.describe`), with the server's
paths left out (a local dataset or run folder shown by its last part)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from semflow.description import describe_markdown
from semflow.loading import LoadedModel

_COMMAND = re.compile(r"\s*Reproduce: `[^`]*`\.?")  # how figures were made: a command with server paths
_CODE = re.compile(r"`([^`\s]+)`")


def model_info(model: LoadedModel) -> dict[str, Any]:
    """/model_info: `LoadedModel.describe`, every dataset named as a visitor may see it (`public`)."""
    description = copy.deepcopy(model.describe())
    for part in ("training_data", "evaluation"):
        if description.get(part) and description[part].get("dataset"):
            description[part]["dataset"] = _public_name(str(description[part]["dataset"]))
    return description


def model_info_markdown(model: LoadedModel) -> str:
    """The page's model-info panel: the model's identity (never a path), a fallback's notice, and its description."""
    description = model.describe()
    lines = [f"**Model**: `{description['model']}` @ `{description['revision']}` ({description['formulation']} "
             f"formulation)", describe_markdown(description)]
    if description["notice"]:
        lines.insert(0, f"⚠️ {description['notice']}")
    return public("\n\n".join(lines))


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
