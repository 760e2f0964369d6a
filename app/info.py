"""The model-info panel: the model's identity (never a path), label set, resolution, defaults, training data and
metrics taken from the model card, with the card's server paths and commands left out."""

from __future__ import annotations

import re
from pathlib import Path

from semflow.loading import LoadedModel

_COMMAND = re.compile(r"\s*Reproduce: `[^`]*`\.?")  # how the card's figures were made: a command with server paths
_CODE = re.compile(r"`([^`\s]+)`")


def card_section(card: str | None, title: str) -> str | None:
    """The body of the ``## title`` section of a markdown card, if present."""
    if not card:
        return None
    match = re.search(rf"^## {re.escape(title)}\s*$(.*?)(?=^## |\Z)", card, flags=re.MULTILINE | re.DOTALL)
    return match.group(1).strip() if match else None


def model_info_markdown(model: LoadedModel) -> str:
    pipe = model.pipe
    labels = pipe.labels
    height, width = pipe.resolution
    lines = [
        f"**Model**: `{model.name}` @ `{model.revision}` ({pipe.formulation.name} formulation)",
        f"**Label set**: `{labels.name}`, {labels.num_classes} classes"
        + ("" if labels.ignore_id is None else f" (+ id {labels.ignore_id} = {labels.ignore_name}, unlabelled)"),
        f"**Model resolution**: {width}x{height} (inputs are resized to it and results back to their size)",
        f"**Anchors**: k={pipe.anchor_spec.k}, s={pipe.anchor_spec.s:g}; perturbation β={pipe.config.perturbation:g}",
        f"**Defaults**: segment {pipe.config.segmentation_steps} step(s), synthesize {pipe.config.synthesis_steps} "
        f"steps, {pipe.config.solver}",
    ]
    data = re.search(r"\*\*Training data\*\*: (.*)", model.card or "")
    if data:
        lines.append(f"**Training data**: {data.group(1)}")
    if model.notice:
        lines.insert(0, f"⚠️ {model.notice}")
    metrics = card_section(model.card, "Metrics")
    body = "\n\n".join(lines)
    return public(body + ("\n\n### Metrics (from the model card)\n\n" + metrics if metrics else ""))


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
