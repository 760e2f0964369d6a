"""MkDocs hook: each embedded model's card (semflow/models/<name>/README.md) as the page models/<name>.md, so the
site shows the cards themselves rather than copies of them."""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File, Files

MODELS = Path(__file__).resolve().parents[2] / "semflow" / "models"
CARD = "README.md"
FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.DOTALL)  # the Hub's YAML header: metadata, not page content


def card_page(card: str) -> str:
    """A card as a docs page: without its YAML header; its folded config kept folded (the HTML block parsed as
    Markdown, so the JSON inside stays a code block)."""
    return FRONT_MATTER.sub("", card, count=1).replace("<details>", '<details markdown="1">')


def on_files(files: Files, config) -> Files:
    for folder in sorted(MODELS.iterdir()):
        if (folder / CARD).is_file():
            content = card_page((folder / CARD).read_text(encoding="utf-8"))
            files.append(File.generated(config, f"models/{folder.name}.md", content=content))
    return files
