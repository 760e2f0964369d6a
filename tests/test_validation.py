"""Each rule lives in one place (`semflow.limits`, checked by the pipeline): the page's callbacks and the API's
endpoints, fed the same bad values as the pipeline, say the pipeline's own sentence; the app words only what it alone
knows (an empty field, its own limit on variants)."""

import gradio as gr
import numpy as np
import PIL.Image
import pytest
from conftest import tiny_pipeline

from app.api import Endpoints
from app.callbacks import MASK_TO_IMAGE, Page
from app.editor import editor_value
from app.errors import sentence
from app.service import Studio, Studios
from app.session import Session
from app.settings import Settings
from semflow.limits import MAX_EDIT_MARGIN, MAX_SEED, MAX_STEPS, InvalidInput
from semflow.loading import LoadedModel

# One bad value of one setting per case; every other setting as the page sends it.
CASES = [("steps", 0), ("steps", MAX_STEPS + 1), ("steps", 2.5), ("steps", float("nan")), ("solver", "rk4"),
         ("seed", -1), ("seed", MAX_SEED), ("seed", 1.5), ("beta", -1.0), ("beta", 1000.0), ("beta", float("inf")),
         ("margin", -1), ("margin", MAX_EDIT_MARGIN + 1), ("margin", 2.5), ("strength", 1.5), ("strength", -0.1)]
DEFAULTS = {"steps": 2, "solver": "euler", "seed": 0, "beta": 5.0, "margin": 3, "strength": 0.0}
VARIANTS = 2


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A tiny model's page and API, a segmented photo with one changed box in its mask, and the files of both."""
    folder = tmp_path_factory.mktemp("validation")
    studio = Studio(LoadedModel(tiny_pipeline(), "tiny-model", "sha256:0123456789abcdef"),
                    Settings(annotations_dir=folder / "annotations", cache_dir=folder / "cache", queue_root=folder))
    page = Page(Studios.of(studio))
    photo = folder / "street.png"
    PIL.Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(photo)
    session = page.segment(page.load_image({"path": str(photo)}, Session()).session, 1, "euler", 0.5).session
    ids = session.ids.copy()
    ids[4:10, 5:12] = (ids[4:10, 5:12] + 1) % studio.labels.num_classes
    mask = folder / "edited.png"
    PIL.Image.fromarray(ids.astype(np.uint8)).save(mask)
    return {"page": page, "api": Endpoints(Studios.of(studio)), "pipe": studio.pipe, "session": session, "ids": ids,
            "editor": editor_value(session.image, ids, studio.labels), "photo": str(photo), "mask": str(mask)}


def _pipeline_sentence(call) -> str:
    with pytest.raises(InvalidInput) as caught:
        call()
    return sentence(caught.value)


def _app_sentence(call) -> str:
    with pytest.raises(gr.Error) as caught:
        call()
    return caught.value.message


def _calls(work, setting, value):
    """(the pipeline's call, the app's calls) with `setting` at `value`."""
    s = {**DEFAULTS, setting: value}
    pipe, page, api, session, ids, editor = (work[k] for k in ("pipe", "page", "api", "session", "ids", "editor"))
    image = session.image
    if setting in ("margin", "strength"):
        return lambda: pipe.edit(image, ids, margin=s["margin"], strength=s["strength"]), [
            lambda: page.edit_photo(editor, session, VARIANTS, s["seed"], s["beta"], s["steps"], s["solver"],
                                    s["margin"], s["strength"]),
            lambda: page.edit_preview(editor, session, s["margin"], s["strength"]),
            lambda: api.edit(work["photo"], work["mask"], s["seed"], VARIANTS, s["margin"], s["strength"], s["beta"],
                             s["steps"], s["solver"])]
    if setting in ("steps", "solver"):
        def pipeline():
            return pipe.segment(image, num_inference_steps=s["steps"], solver=s["solver"])

        app = [lambda: page.segment(session, s["steps"], s["solver"], 0.5),
               lambda: api.segment(work["photo"], s["steps"], s["solver"])]
    else:
        def pipeline():
            return pipe.synthesize(ids, seed=s["seed"], perturbation=s["beta"], num_images_per_mask=VARIANTS)

        app = []
    return pipeline, app + [
        lambda: page.synthesize(editor, session, VARIANTS, s["seed"], s["beta"], s["steps"], s["solver"], False,
                                MASK_TO_IMAGE),
        lambda: api.synthesize(work["mask"], s["seed"], VARIANTS, s["beta"], s["steps"], s["solver"]),
        lambda: page.edit_photo(editor, session, VARIANTS, s["seed"], s["beta"], s["steps"], s["solver"],
                                s["margin"], s["strength"])]


@pytest.mark.parametrize("setting,value", CASES, ids=[f"{s}={v}" for s, v in CASES])
def test_the_app_says_the_pipelines_sentence(work, setting, value):
    pipeline, app = _calls(work, setting, value)
    expected = _pipeline_sentence(pipeline)
    for call in app:
        assert _app_sentence(call) == expected


def test_form_text_reaches_the_pipeline_as_numbers(work):
    page, session, editor = work["page"], work["session"], work["editor"]
    result = page.synthesize(editor, session, "2", " 7 ", "5.0", "2", "euler", False, MASK_TO_IMAGE)
    assert [caption for _, caption in result.gallery] == ["seed 7 · tiny-model", "seed 8 · tiny-model"]
    expected = _pipeline_sentence(lambda: work["pipe"].synthesize(work["ids"], seed=1.5))
    assert _app_sentence(lambda: page.synthesize(editor, session, 1, "1.5", None, 2, "euler", False,
                                                 MASK_TO_IMAGE)) == expected


def test_what_only_the_app_knows_is_the_apps_sentence(work):
    page, session, editor = work["page"], work["session"], work["editor"]
    for seed in (None, ""):  # an emptied number field, or text it could not take ("abc" arrives as nothing)
        assert _app_sentence(lambda seed=seed: page.synthesize(editor, session, 1, seed, 5.0, 2, "euler", False,
                                                               MASK_TO_IMAGE)) == \
            "Seed is empty or not a number: type a whole number."
    assert _app_sentence(lambda: page.segment(session, None, "euler", 0.5)) == \
        "Steps is empty or not a number: type a whole number."
    assert _app_sentence(lambda: page.synthesize(editor, session, 5, 0, 5.0, 2, "euler", False, MASK_TO_IMAGE)) == \
        "Choose between 1 and 4 variants, got 5."
