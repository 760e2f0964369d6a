"""Offline Hub paths: a pre-filled HF cache serves the CLI, `hf download` (the same snapshot as this project resolves),
the app and a built Space; pushes are checked with the Hub API mocked; an unreachable Hub falls back to the embedded
default."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from app_server import ROOT, AppServer
from gradio_client import Client, handle_file
from hub_mock import RecordingHub

from semflow.loading import EMBEDDED_MODEL, load_model

REPO_ID = "acme/semflow-camvid"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
CACHED_NAME = "Sky (from the Hub cache)"


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory):
    """An HF cache holding REPO_ID at COMMIT: the embedded default with its first class renamed."""
    home = tmp_path_factory.mktemp("hf_home")
    repo = home / "hub" / f"models--{REPO_ID.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    shutil.copytree(EMBEDDED_MODEL, snapshot)
    index = json.loads((snapshot / "model_index.json").read_text())
    index["label_set"]["class_names"][0] = CACHED_NAME
    (snapshot / "model_index.json").write_text(json.dumps(index, indent=2))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return home


@pytest.fixture(scope="module")
def cache(example_cache):
    """The test run's example cache (examples are made once per model, here and for the shared app server)."""
    return str(example_cache)


def _env(hf_home, **extra):
    """The variables a test sets, over an offline Hub in `hf_home` (an `AppServer` adds them to this environment)."""
    return {"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", **extra}


def _process_env(hf_home, **extra):
    """This environment without its SEMFLOW_* variables, with `_env` over it: for CLI subprocesses."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("SEMFLOW_")}, **_env(hf_home, **extra)}


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "street.png"
    PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.slow
def test_cli_loads_the_cached_hub_model(hf_home, photo, tmp_path):
    env = _process_env(hf_home, SEMFLOW_MODEL=REPO_ID)
    info = subprocess.run([sys.executable, "-m", "semflow", "info"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert info.returncode == 0, info.stderr
    assert CACHED_NAME in info.stdout and COMMIT in info.stdout
    pinned = subprocess.run([sys.executable, "-m", "semflow", "segment", str(photo), "--out", str(tmp_path),
                             "--model", f"{REPO_ID}@{COMMIT}"], cwd=ROOT, env=_process_env(hf_home),
                            capture_output=True, text=True, timeout=300)
    assert pinned.returncode == 0, pinned.stderr
    assert PIL.Image.open(tmp_path / "street.png").size == (120, 90)


@pytest.mark.slow
def test_hf_download_resolves_the_cached_repo_as_this_project_does(hf_home):
    hf = Path(sys.executable).with_name("hf")
    result = subprocess.run([str(hf), "download", REPO_ID], env=_process_env(hf_home), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    match = re.search(r"(/\S+/snapshots/\w+)", result.stdout)
    assert match, result.stdout
    folder = Path(match.group(1))
    assert folder.name == COMMIT and CACHED_NAME in (folder / "model_index.json").read_text()
    ours = subprocess.run([sys.executable, "-c", "from semflow.loading import model_folder; "
                           f"print(model_folder('{REPO_ID}'))"], cwd=ROOT, env=_process_env(hf_home),
                          capture_output=True, text=True, timeout=300)
    assert ours.returncode == 0, ours.stderr
    assert Path(ours.stdout.strip()) == folder


def _model_info(url):
    return Client(url, verbose=False).predict(api_name="/model_info")


@pytest.mark.slow
def test_app_serves_the_cached_hub_model(hf_home, photo, tmp_path, cache):
    server = AppServer(_env(hf_home, SEMFLOW_MODEL=REPO_ID, SEMFLOW_CACHE=cache,
                            SEMFLOW_ANNOTATIONS_DIR=str(tmp_path / "annotations")), log=tmp_path / "app.log")
    try:
        info = _model_info(server.url)
        assert info["model"] == REPO_ID and info["revision"] == COMMIT and info["notice"] is None
        assert info["label_set"]["class_names"][0] == CACHED_NAME
        ids_path, _ = Client(server.url, verbose=False).predict(handle_file(str(photo)), api_name="/segment")
        assert PIL.Image.open(ids_path).size == (120, 90)
    finally:
        server.stop()


@pytest.mark.slow
def test_built_space_starts_on_its_own_with_only_the_cache(hf_home, photo, tmp_path, cache):
    build = subprocess.run([sys.executable, "spaces/build.py", "--model", REPO_ID, "--out", str(tmp_path / "space")],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    space = tmp_path / "space"
    assert {p.name for p in space.iterdir()} >= {"app.py", "app", "semflow", "README.md", "requirements.txt"}
    card = (space / "README.md").read_text()
    assert f"preload_from_hub:\n  - {REPO_ID}" in card and "sdk: gradio" in card and "sdk_version: 6.31.0" in card
    assert not (space / "tests").exists() and not (space / "training").exists()
    server = AppServer(_env(hf_home, SEMFLOW_CACHE=cache, SEMFLOW_ANNOTATIONS_DIR=str(tmp_path / "annotations"),
                            PYTHONPATH=""),
                       log=tmp_path / "space.log", cwd=space)
    try:
        info = _model_info(server.url)
        assert info["model"] == REPO_ID and info["label_set"]["class_names"][0] == CACHED_NAME
        ids_path, overlay_path = Client(server.url, verbose=False).predict(handle_file(str(photo)),
                                                                           api_name="/segment")
        assert PIL.Image.open(ids_path).mode == "L"
    finally:
        server.stop()


@pytest.mark.slow
def test_unreachable_hub_falls_back_to_the_embedded_default(hf_home, photo, tmp_path, monkeypatch, cache):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(hf_home))
    loaded = load_model("acme/not-in-the-cache", fallback=True)
    assert loaded.notice and "acme/not-in-the-cache" in loaded.notice and "embedded default" in loaded.notice
    assert loaded.name == f"{EMBEDDED_MODEL.name} (embedded)" and loaded.revision.startswith("sha256:")
    assert loaded.pipe.labels.class_names[0] != CACHED_NAME

    server = AppServer(_env(hf_home, SEMFLOW_MODEL="acme/not-in-the-cache", SEMFLOW_CACHE=cache,
                            SEMFLOW_ANNOTATIONS_DIR=str(tmp_path / "annotations")), log=tmp_path / "app.log")
    try:
        info = _model_info(server.url)
        assert "embedded default" in info["notice"]
        page = Client(server.url, verbose=False)
        ids_path, _ = page.predict(handle_file(str(photo)), api_name="/segment")
        assert PIL.Image.open(ids_path).size == (120, 90)
        import urllib.request

        assert "embedded default" in urllib.request.urlopen(server.url, timeout=10).read().decode()
    finally:
        server.stop()


def test_space_push_uploads_the_built_folder(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "spaces"))
    try:
        import build as space_build
    finally:
        sys.path.remove(str(ROOT / "spaces"))
    hub = RecordingHub(monkeypatch)
    assert space_build.main(["--model", f"{REPO_ID}@v1", "--out", str(tmp_path / "space"), "--push",
                             "acme/semflow-studio"]) == 0
    assert hub.repos == [{"repo_id": "acme/semflow-studio", "repo_type": "space", "private": None, "exist_ok": True,
                          "space_sdk": "gradio"}]
    (upload,) = hub.uploads
    assert upload["repo_type"] == "space" and upload["repo_id"] == "acme/semflow-studio"
    assert {"app.py", "README.md", "requirements.txt", "semflow_space.json", "app/ui.py",
            "semflow/pipeline.py", f"{EMBEDDED_MODEL.relative_to(ROOT).as_posix()}/model_index.json"} \
        <= set(upload["files"])
    assert json.loads(upload["contents"]["semflow_space.json"]) == {"model": f"{REPO_ID}@v1"}
    assert f"models:\n  - {REPO_ID}\n" in upload["contents"]["README.md"].decode()
    assert space_build.main(["--model", str(tmp_path), "--out", str(tmp_path / "x")]) == 2


def test_pipeline_push_to_hub_uploads_weights_config_and_card(monkeypatch):
    from semflow import SemFlowPipeline

    hub = RecordingHub(monkeypatch)
    pipe = SemFlowPipeline.from_pretrained(EMBEDDED_MODEL)
    pipe.push_to_hub("acme/copy", model_card="# a card\n")
    (upload,) = hub.uploads
    assert hub.repos[0]["repo_type"] == "model" and upload["repo_id"] == "acme/copy"
    assert {"model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
            "README.md"} <= set(upload["files"])
    assert upload["contents"]["README.md"] == b"# a card\n"


def test_annotation_pushes_never_overwrite_earlier_ones(tmp_path, monkeypatch):
    from app.annotations import AnnotationStore

    hub = RecordingHub(monkeypatch)
    store = AnnotationStore(tmp_path / "annotations")
    image = PIL.Image.new("RGB", (16, 12))
    store.save(image, np.zeros((12, 16), np.uint8), {"annotator": "a"})
    first = store.push("acme/street-annotations")
    assert store.push("acme/street-annotations") is None  # nothing new
    store.save(image, np.ones((12, 16), np.uint8), {"annotator": "b"})
    second = store.push("acme/street-annotations")
    assert first and second and len(hub.uploads) == 2
    paths = [u["path_in_repo"] for u in hub.uploads]
    assert all(p.startswith("data/") for p in paths) and paths[0] != paths[1]
    assert all(r["repo_type"] == "dataset" for r in hub.repos)
    rows = [[json.loads(line)["annotator"] for line in u["contents"]["metadata.jsonl"].decode().splitlines()]
            for u in hub.uploads]
    assert rows == [["a"], ["b"]]
    assert all(len([f for f in u["files"] if f.startswith("masks/")]) == 1 for u in hub.uploads)
