"""One description of a model (`SemFlowPipeline.describe`, under its identity in `LoadedModel.describe`) feeds the
page's model panel, /model_info and `python -m semflow info`, its figures read from the records beside the weights;
the model reference is resolved once, and `$SEMFLOW_MODEL` is read in one place."""

import json
import re
from pathlib import Path

import pytest

from app.api import Endpoints
from app.info import model_info_markdown, public
from app.service import Studio, Studios
from app.settings import Settings
from semflow.__main__ import main
from semflow.description import describe_lines, plain
from semflow.loading import EMBEDDED_MODELS, load_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def loaded():
    return load_model("symmetric", device="cpu")


def test_one_description_feeds_the_panel_the_api_and_the_command_line(loaded, tmp_path, capsys):
    description = loaded.describe()
    assert (description["model"], description["notice"]) == ("symmetric-camvid (embedded)", None)
    assert description["revision"].startswith("sha256:") and description["label_set"]["name"] == "camvid"
    recorded = json.loads((EMBEDDED_MODELS["symmetric"] / "evaluation.json").read_text())["segmentation"][0]
    row = description["evaluation"]["segmentation"][0]
    assert (row["steps"], row["solver"], row["miou"]) == (recorded["steps"], recorded["solver"], recorded["miou"])
    assert description["training_data"]["rows"] == 367

    panel = model_info_markdown(loaded)
    api = Endpoints(Studios.of(Studio(loaded, Settings(annotations_dir=tmp_path)))).model_info()
    assert main(["info", "--model", "symmetric"]) == 0
    printed = capsys.readouterr().out
    figures = f"| euler | 1 | {row['miou']:.2f} | {row['pixel_accuracy']:.2f} |"
    for line in describe_lines(description):
        assert public(line) in panel and plain(line) in printed
    assert figures in panel and figures in printed and "Training data: ../shared/datasets/camvid" in printed
    assert "No drive was held out of its training data: this model has no figure on a drive it never saw." in printed
    assert "**Training data**: `camvid` (split `train`, 367 rows)" in panel, "a server's folder by its last part"
    assert api["training_data"]["dataset"] == "camvid" and api["evaluation"]["dataset"] == "camvid"
    assert api == {**description, "training_data": api["training_data"], "evaluation": api["evaluation"]}
    assert api["evaluation"]["segmentation"] == description["evaluation"]["segmentation"]
    assert "../" not in json.dumps(api) and str(ROOT) not in json.dumps(api)


def test_a_model_without_records_is_described_without_figures():
    from conftest import tiny_pipeline

    description = tiny_pipeline().describe()
    assert description["training_data"] is None and description["evaluation"] is None
    assert len(describe_lines(description)) == 6


def test_the_model_reference_is_resolved_once(monkeypatch):
    snapshot = EMBEDDED_MODELS["symmetric"]  # what the HF cache would hand back for the repo
    asked = []
    monkeypatch.setattr("semflow.hub.snapshot_download",
                        lambda repo_id, revision=None, repo_type=None: asked.append((repo_id, revision)) or
                        str(snapshot))
    loaded = load_model("acme/streets@v1", device="cpu")
    assert asked == [("acme/streets", "v1")], "one look-up; the pipeline is handed the folder"
    assert (loaded.name, loaded.revision, loaded.folder) == ("acme/streets", snapshot.name, snapshot)


def test_semflow_model_is_read_in_one_place(monkeypatch, tmp_path):
    sources = [path for folder in ("semflow", "app", "training", "spaces") for path in (ROOT / folder).rglob("*.py")]
    sources.append(ROOT / "app.py")
    readers = [path.relative_to(ROOT).as_posix() for path in sources
               if re.search(r"(environ|getenv)\W[^\n]*(ENV_MODEL|SEMFLOW_MODEL)", path.read_text(encoding="utf-8"))]
    assert readers == ["semflow/loading.py"], readers
    monkeypatch.setenv("SEMFLOW_MODEL", "acme/not-this-one")
    settings = Settings.from_env({"SEMFLOW_MODEL": "semflow"}, space_file=tmp_path / "none.json")
    assert settings.model == "semflow", "the settings read the environment they are given, once"
    assert Studios(Settings(annotations_dir=tmp_path)).choices()[0] == "symmetric", \
        "the app's models follow its settings, not the environment read again"
