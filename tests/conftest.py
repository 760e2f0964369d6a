"""Shared test set-up: offline Hub, small CPU thread count, tiny seeded velocity nets and pipelines."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
# Tests write only to temporary folders: `datasets`' cache too (subprocesses inherit it), removed at the end.
os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="semflow-tests-datasets-")
atexit.register(shutil.rmtree, os.environ["HF_DATASETS_CACHE"], True)
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402
import torch  # noqa: E402
from diffusers import UNet2DModel  # noqa: E402

from semflow import SemFlowPipeline  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))


def tiny_unet(channels: int = 12, sample_size: tuple[int, int] = (8, 12), seed: int = 0) -> UNet2DModel:
    """A two-level UNet2DModel with a few thousand parameters, initialised from `seed`."""
    torch.manual_seed(seed)
    return UNet2DModel(
        sample_size=sample_size,
        in_channels=channels,
        out_channels=channels,
        block_out_channels=(16, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
        add_attention=False,
    ).eval()


def tiny_pipeline(label_set: str = "camvid", pixel_factor: int = 2, perturbation: float = 20.0,
                  seed: int = 0, **kwargs) -> SemFlowPipeline:
    """A pixel-codec pipeline at 16x24 on a tiny random net."""
    pipe = SemFlowPipeline(tiny_unet(3 * pixel_factor**2, seed=seed), label_set=label_set,
                           pixel_factor=pixel_factor, perturbation=perturbation, resolution=(16, 24),
                           synthesis_steps=3, **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture
def pipe() -> SemFlowPipeline:
    return tiny_pipeline()


@pytest.fixture(scope="session")
def decompression_bomb(tmp_path_factory):
    """A 40000x40000 1-bit PNG: about 200 kB on disk, 1.6 gigapixels once decoded."""
    from image_files import bomb_png

    return bomb_png(tmp_path_factory.mktemp("bomb") / "bomb.png", 40000, 40000)


# The one app server of the client and browser tests: the embedded default model, pushing configured with a server
# token that no anonymous caller may use.
SERVER_TOKEN = "hf_server_token_never_to_be_used_anonymously"
ANNOTATIONS_REPO = "acme/street-annotations"


@pytest.fixture(scope="session")
def example_cache(tmp_path_factory):
    """One SEMFLOW_CACHE for every app server of the test run: the examples of a model are made once."""
    return tmp_path_factory.mktemp("example_cache")


@pytest.fixture(scope="session")
def app_server(tmp_path_factory, example_cache):
    from app_server import AppServer

    root = tmp_path_factory.mktemp("app")
    server = AppServer({"SEMFLOW_CACHE": str(example_cache), "SEMFLOW_ANNOTATIONS_DIR": str(root / "annotations"),
                        "SEMFLOW_CONCURRENCY": "2", "SEMFLOW_ANNOTATIONS_REPO": ANNOTATIONS_REPO,
                        "HF_TOKEN": SERVER_TOKEN}, log=root / "app.log")
    server.root = root
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser_server(request):
    """The shared app server, for a browser test: without Chromium the test skips (fails under ``CI=true``) before the
    server starts, since there is nothing to drive it."""
    from browser_helpers import require_chromium

    require_chromium()
    return request.getfixturevalue("app_server")
