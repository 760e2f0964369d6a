"""The page's smaller promises, without a server: the trajectory's caption says what each model's animation shows; a
picture far from the street scenes the model knows gets a sentence; the unsure heat-map tints only doubtful pixels and
has a key; model info shows no server paths or commands; the split field only where a split applies; the CVAT export
is named after its queue."""

import zipfile

import numpy as np
import PIL.Image
import pytest

from app.info import model_info_markdown, public
from app.overlays import UNSURE_BELOW, UNSURE_RGB, unsure_overlay, unsure_scale_html
from app.queue_sources import takes_split


@pytest.fixture
def embedded(monkeypatch, tmp_path):
    """The app's studios on the embedded models (no SEMFLOW_MODEL), their own annotation folder."""
    from app.service import Studios
    from app.settings import Settings

    monkeypatch.delenv("SEMFLOW_MODEL", raising=False)
    return Studios(Settings(annotations_dir=tmp_path / "ann", cache_dir=tmp_path / "cache"))


def test_the_trajectory_caption_says_what_each_models_animation_shows(embedded):
    import app.callbacks as cb

    page = cb.Page(embedded)
    default, paper = (page.trajectory_caption(name, cb.MASK_TO_IMAGE) for name in ("symmetric", "semflow"))
    assert "from Gaussian noise to the image" in default and "anchor colours" not in default
    assert "anchor colours" in paper and "perturbed by β" in paper and "noise" not in paper
    assert "from Gaussian noise to the mask" in page.trajectory_caption(None, cb.IMAGE_TO_MASK)
    assert "photo turning into its mask" in page.trajectory_caption("semflow", cb.IMAGE_TO_MASK)
    caption = page.choose_model("semflow", cb.Session(), cb.IMAGE_TO_MASK).trajectory_caption
    assert caption == page.trajectory_caption("semflow", cb.IMAGE_TO_MASK)


def test_model_info_shows_no_server_paths_or_commands(embedded):
    for name in ("symmetric", "semflow"):
        info = model_info_markdown(embedded.models.get(name))
        assert not [part for part in ("../", "runs/", "shared/", "semflow/models", "Reproduce") if part in info], info
        assert "**Training data**: `camvid`" in info and "| euler | 1 |" in info
    card = ("Trained on `/srv/data/streets/` and `./local/run`, scored like `org/streets` (a Hub id). Reproduce: "
            "`python -m training.evaluate --model runs/x --dataset /srv/data/streets`.")
    assert public(card) == "Trained on `streets` and `run`, scored like `org/streets` (a Hub id)."


def test_the_heat_map_tints_only_doubtful_pixels_and_has_a_key():
    photo = PIL.Image.new("RGB", (4, 1), (0, 0, 255))
    confidence = np.array([[0.0, UNSURE_BELOW / 2, UNSURE_BELOW, 0.9]], np.float32)
    shown = np.asarray(unsure_overlay(photo, confidence, 1.0)).astype(int)
    assert tuple(shown[0, 0]) == UNSURE_RGB and tuple(shown[0, 2]) == (0, 0, 255) == tuple(shown[0, 3])
    assert 100 < shown[0, 1, 0] < 160, "half-way down the ramp, half tinted"
    settled = np.array([[True, False, False, False]])
    assert tuple(np.asarray(unsure_overlay(photo, confidence, 1.0, settled))[0, 0]) == (0, 0, 255)
    assert "linear-gradient" in unsure_scale_html() and f"{UNSURE_BELOW:g} and above: no tint" in unsure_scale_html()


def test_the_split_field_is_for_what_takes_a_split(tmp_path):
    (tmp_path / "photos" / "sub").mkdir(parents=True)
    PIL.Image.new("RGB", (8, 8)).save(tmp_path / "photos" / "sub" / "a.png")
    (tmp_path / "imagefolder").mkdir()
    (tmp_path / "imagefolder" / "metadata.jsonl").write_text("")
    (tmp_path / "hub-layout" / "data").mkdir(parents=True)
    assert not takes_split(tmp_path / "photos") and takes_split(tmp_path / "imagefolder")
    assert takes_split(tmp_path / "hub-layout") and takes_split("org/street-frames")


@pytest.fixture
def page(tmp_path):
    from conftest import tiny_pipeline

    from app.callbacks import Page
    from app.service import Studio, Studios
    from app.settings import Settings
    from semflow.loading import LoadedModel

    studio = Studio(LoadedModel(tiny_pipeline(), "tiny-model", "sha256:0"),
                    Settings(annotations_dir=tmp_path / "ann", cache_dir=tmp_path / "cache", queue_root=tmp_path))
    return Page(Studios.of(studio)), studio


def test_an_unfamiliar_picture_gets_a_sentence_and_the_split_field_follows_the_location(page, tmp_path, monkeypatch):
    from app.session import Session

    callbacks, studio = page
    monkeypatch.setattr(studio, "typical_confidence", lambda: 0.66)
    assert studio.unfamiliar(0.60) is None and studio.unfamiliar(0.50) is None
    sentence = studio.unfamiliar(0.26)
    assert sentence.startswith("This picture does not look like the street scenes the model knows")
    assert "0.26, against 0.66 on validation frames" in sentence
    monkeypatch.setattr(studio, "typical_confidence", lambda: None)
    assert studio.unfamiliar(0.01) is None, "nothing to compare with, nothing said"

    (tmp_path / "frames").mkdir()
    PIL.Image.new("RGB", (8, 8)).save(tmp_path / "frames" / "a.png")
    assert callbacks.split_field("frames", Session())["visible"] is False
    assert callbacks.split_field("org/street-frames", Session())["visible"] is True
    assert callbacks.split_field("", Session())["visible"] is False
    outside = callbacks.split_field(str(tmp_path.parent), Session())
    assert "visible" not in outside, "a folder outside the queue folder: the person learns why on opening it"


def test_the_cvat_export_is_named_after_its_queue_and_shown_only_then(page, tmp_path):
    from app.callbacks import EXPORT_CVAT
    from app.editor import editor_value
    from app.session import Session
    from app.views import KEEP
    from app.work_queue import QUEUE_ORDER

    callbacks, studio = page
    (tmp_path / "frames").mkdir()
    PIL.Image.new("RGB", (30, 20)).save(tmp_path / "frames" / "a.png")
    session = callbacks.open_queue("frames", "", QUEUE_ORDER, Session(owner="a" * 32)).session
    callbacks.save_to_queue(editor_value(session.image, np.zeros((20, 30), np.uint8), studio.labels), session)
    refused = callbacks.export_queue(EXPORT_CVAT, True, session)
    assert refused.queue_export is KEEP and "No item of this queue is accepted yet" in refused.queue_status, \
        "exports take accepted items by default"
    export = callbacks.export_queue(EXPORT_CVAT, False, session).queue_export
    assert export["visible"] is True and export["value"].endswith("/frames_cvat.zip")
    with zipfile.ZipFile(export["value"]) as archive:
        assert "SegmentationClass/a.png" in archive.namelist()
