"""A real browser (Debian's Chromium, headless, via Playwright) drives the shared app server: upload, segment, paint a
stroke, synthesize, save; the saved mask must hold the stroke's class at the stroke's pixels; an example layout must
show on the editor's canvas; files that are not usable images get a sentence, not a bare "Error"; the swatches have
names and new work clears old outputs; a work queue is pre-annotated, flood-filled (a large fill, applied after its
preview), saved by key and resumed after a restart (its own servers).

The screenshots of the first and the queue test go to a temporary folder; `UPDATE_SCREENSHOT=1` makes them refresh
docs/screenshot.png and docs/queue.png (in the README and the docs) instead (`UPDATE_SCREENSHOT=1 python -m pytest -q
tests/test_browser.py -k "paint or queue"`)."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from app_server import ROOT
from browser_helpers import (
    STROKE_HALF_WIDTH,
    canvas_is_uncovered,
    editor_size,
    open_app,
    paint_stroke,
    pick_class,
    require_chromium,
    shown,
    stroke_share,
    wait_until_canvas_settles,
)

from app.callbacks import FLOOD
from app.shortcuts import CLASS_KEYS, SIZE_STEP

pytestmark = pytest.mark.slow

SCREENSHOT = ROOT / "docs" / "screenshot.png"
QUEUE_SCREENSHOT = ROOT / "docs" / "queue.png"  # the annotator's workflow in the docs (and the README)
STROKE_CLASS = "Bicyclist"


@pytest.fixture(scope="module")
def server(request):
    require_chromium()  # before the shared server starts: without Chromium there is nothing to drive it
    return request.getfixturevalue("app_server")


def _rows(server) -> list[dict]:
    path = server.root / "annotations" / "metadata.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _street_photo(path: Path) -> None:
    """A real street photo: one of the app's example photos (a CamVid validation frame, see their NOTICE)."""
    from app.examples import PHOTOS

    shutil.copyfile(PHOTOS / "camvid_0016E5_08079.png", path)


def test_segment_paint_synthesize_save(server, tmp_path):
    from playwright.sync_api import sync_playwright

    from semflow import load_pipeline
    from semflow.loading import DEFAULT_MODEL

    photo = tmp_path / "street.png"
    _street_photo(photo)
    pipe = load_pipeline(DEFAULT_MODEL)  # the shared server's model
    before = len(_rows(server))
    predicted = pipe.segment(PIL.Image.open(photo)).ids[0]
    stroke_class = pipe.labels.class_names.index(STROKE_CLASS)

    with sync_playwright() as playwright:
        browser, page = open_app(playwright, server.url)
        page.set_input_files("input[type=file] >> nth=0", str(photo))
        page.get_by_text("Loaded a 480x360 image").wait_for(timeout=60_000)
        page.get_by_role("button", name="Segment", exact=True).click()
        page.locator(".semflow-legend >> text=%").first.wait_for(timeout=60_000)

        editor = page.locator("#mask-editor")
        box = editor.locator(".pixi-target canvas").bounding_box()
        wait_until_canvas_settles(page, box)
        assert canvas_is_uncovered(page, box), "something (a progress overlay?) covers the editor's canvas"
        zoom = float(editor.locator(".zoom-number").inner_text().strip().rstrip("%")) / 100
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        colour = pipe.labels.colors[stroke_class]
        assert stroke_share(page, cx, cy, colour) < 0.5, "the prediction already shows the stroke's class there"
        pick_class(page, CLASS_KEYS[stroke_class], colour)  # the class's key picks its brush
        paint_stroke(page, cx, cy)
        assert stroke_share(page, cx, cy, colour) > 0.9, "the painted stroke does not show on the canvas"
        page.keyboard.press("z")  # undo, then redo, by key
        page.wait_for_timeout(700)
        assert stroke_share(page, cx, cy, colour) < 0.5, "z did not undo the stroke"
        page.keyboard.press("y")
        page.wait_for_timeout(700)
        assert stroke_share(page, cx, cy, colour) > 0.9, "y did not redo the stroke"

        page.get_by_role("button", name="Synthesize", exact=True).click()
        page.get_by_text("Round trip").wait_for(timeout=120_000)
        page.get_by_role("button", name="Save image + corrected mask").click()
        page.get_by_text("Saved", exact=False).first.wait_for(timeout=60_000)
        page.wait_for_timeout(500)
        screenshot = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path / SCREENSHOT.name
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    assert PIL.Image.open(screenshot).width >= 1400

    rows = _rows(server)[before:]
    assert len(rows) == 1 and rows[0]["source_file"] == "street.png"
    saved = np.asarray(PIL.Image.open(server.root / "annotations" / rows[0]["mask_file_name"]))
    assert saved.shape == predicted.shape == (360, 480)
    half = int(0.7 * STROKE_HALF_WIDTH / zoom)
    row, centre = saved.shape[0] // 2, saved.shape[1] // 2
    stroke = saved[row - 2 : row + 3, centre - half : centre + half]
    assert (stroke == stroke_class).all(), np.unique(stroke, return_counts=True)
    assert (predicted[row - 2 : row + 3, centre - half : centre + half] != stroke_class).any()
    far = np.ones_like(saved, bool)
    far[row - 40 : row + 41, :] = False
    assert (saved[far] == predicted[far]).mean() > 0.99


def test_example_layout_fills_the_editor(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser, page = open_app(playwright, server.url)
        layouts = page.locator(".block", has=page.get_by_text("Example layouts", exact=False)).last
        layouts.get_by_role("button").first.click()
        page.get_by_text("Layout loaded into the editor").wait_for(timeout=60_000)
        box = page.locator("#mask-editor .pixi-target canvas").bounding_box()
        wait_until_canvas_settles(page, box)
        assert canvas_is_uncovered(page, box), "something (a progress overlay?) covers the editor's canvas"
        pixels = shown(page, box)
        browser.close()
    assert (pixels.min(-1) < 200).mean() > 0.3, "the layout does not show on the editor's canvas"


def test_unusable_uploads_get_a_sentence(server, tmp_path, decompression_bomb):
    # Gradio's Image component used to open the file itself and fail with a bare "Error" before the app could say what
    # was wrong.
    from playwright.sync_api import sync_playwright

    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.png").write_text("this is not an image")
    cases = [(tmp_path / "empty.png", "not a readable image"), (tmp_path / "notes.png", "not a readable image"),
             (decompression_bomb, "too large to open safely")]
    photo = tmp_path / "street.png"
    _street_photo(photo)
    with sync_playwright() as playwright:
        browser, page = open_app(playwright, server.url)
        for path, sentence in cases:
            page.set_input_files("input[type=file] >> nth=0", str(path))
            message = page.get_by_text(sentence, exact=False).first
            message.wait_for(timeout=60_000)
            assert message.is_visible() and sentence in message.inner_text(), sentence
            assert page.get_by_text("Loaded a", exact=False).count() == 0, f"{path.name} was loaded as an image"
            page.reload()
            page.wait_for_selector("#mask-editor", timeout=60_000)
            page.wait_for_function("() => window.semflowEditorReady === true", timeout=60_000)
        page.set_input_files("input[type=file] >> nth=0", str(photo))  # the page still works after them
        page.get_by_text("Loaded a 480x360 image").wait_for(timeout=60_000)
        page.wait_for_function("() => window.editor.width === 480 && window.editor.height === 360", timeout=30_000)
        assert editor_size(page) == (480, 360)
        browser.close()


def test_swatches_have_names_and_new_work_clears_the_previous_outputs(server):
    from playwright.sync_api import sync_playwright

    from semflow.labels import CAMVID

    with sync_playwright() as playwright:
        browser, page = open_app(playwright, server.url)
        editor = page.locator("#mask-editor")
        editor.get_by_role("button", name="Brush", exact=True).click()
        editor.get_by_role("button", name="Color", exact=True).click()
        swatches = editor.locator("menu.swatch button.color")
        swatches.first.wait_for(timeout=30_000)
        names = [swatches.nth(i).get_attribute("aria-label") for i in range(swatches.count())]
        titles = [swatches.nth(i).get_attribute("title") for i in range(swatches.count())]
        assert names == list(CAMVID.class_names) and titles[0] == f"{CAMVID.class_names[0]} (key 1)"
        page.get_by_role("heading", name="Correct the mask").click()  # focus on the page for the keys
        page.keyboard.press("]")
        size = editor.locator("input[type=range]")
        size.wait_for(timeout=10_000)
        page.wait_for_timeout(300)
        before = float(size.input_value())
        page.keyboard.press("]")
        page.wait_for_timeout(300)
        assert float(size.input_value()) == before + SIZE_STEP, "] did not make the brush larger"
        page.keyboard.press("[")
        page.wait_for_timeout(300)
        assert float(size.input_value()) == before, "[ did not make the brush smaller"

        photos = page.locator(".block", has=page.get_by_text("Example photos", exact=False)).last
        photos.get_by_role("button").first.click()
        page.get_by_text("Loaded a 480x360 image").wait_for(timeout=60_000)
        page.get_by_role("button", name="Segment", exact=True).click()
        page.get_by_text("Segmented in 1 step(s)").wait_for(timeout=60_000)
        overlay = page.locator(".block", has=page.get_by_text("Segmentation", exact=True)).first
        assert overlay.locator("img").count() == 1 and page.locator(".semflow-legend >> text=%").count() > 0
        page.get_by_text("Blank canvas: paint a layout from scratch").click()  # new work: a blank layout
        page.get_by_role("button", name="New blank layout").click()
        page.get_by_text("Blank 480x360 layout").wait_for(timeout=60_000)
        page.wait_for_timeout(500)
        assert overlay.locator("img").count() == 0, "the previous segmentation stayed on screen"
        assert page.locator(".semflow-legend >> text=%").count() == 0, "the previous legend stayed on screen"

        page.set_viewport_size({"width": 390, "height": 844})  # a phone: the label must end before the toolbar
        page.wait_for_timeout(500)
        label_right, toolbar_left = page.evaluate("""() => {
            const range = document.createRange();
            range.selectNodeContents(document.querySelector("#mask-editor label"));
            return [range.getBoundingClientRect().right,
                    document.querySelector('#mask-editor button[aria-label="Pan"]').getBoundingClientRect().left];
        }""")
        assert label_right < toolbar_left, f"the editor's toolbar covers its label ({label_right} > {toolbar_left})"
        browser.close()


def test_a_queue_is_preannotated_filled_saved_by_key_and_resumed_after_a_restart(tmp_path, example_cache):
    from app_server import AppServer
    from playwright.sync_api import sync_playwright

    require_chromium()
    frames = tmp_path / "frames"
    frames.mkdir()
    for name, shade in (("f1.png", 40), ("f2.png", 90), ("f3.png", 140)):
        picture = np.full((360, 480, 3), shade, np.uint8)
        picture[:, 240:] = (230, 230, 120)  # a flat right half: one flood-fill region
        PIL.Image.fromarray(picture).save(frames / name)
    env = {"SEMFLOW_CACHE": str(example_cache), "SEMFLOW_ANNOTATIONS_DIR": str(tmp_path / "annotations"),
           "SEMFLOW_QUEUE_ROOT": str(tmp_path)}

    def open_queue(page) -> None:
        page.get_by_text("Work queue: annotate a whole folder or dataset").click()
        page.get_by_label("Folder of images, imagefolder, or Hub dataset id").fill(str(frames))
        page.get_by_role("button", name="Open queue").click()

    server = AppServer(env, log=tmp_path / "app1.log")
    try:
        with sync_playwright() as playwright:
            browser, page = open_app(playwright, server.url)
            open_queue(page)
            page.get_by_text("Item 1 of 3: f1").wait_for(timeout=60_000)
            page.get_by_role("button", name="Pre-annotate all").click()
            page.get_by_text("Pre-annotated 3 item(s)").wait_for(timeout=120_000)
            page.get_by_label(FLOOD).check()  # fill with the first class (the default), Sky
            view = page.locator(".block", has=page.get_by_text("Segmentation", exact=True)).first.locator("img")
            box = view.bounding_box()
            page.mouse.click(box["x"] + 0.75 * box["width"], box["y"] + 0.5 * box["height"])
            page.get_by_text("This fill at").wait_for(timeout=60_000)  # half the image: previewed, asked first
            page.get_by_role("button", name="Apply the fill").click()
            page.get_by_text("Flood-filled the region at").wait_for(timeout=60_000)
            page.wait_for_timeout(1000)  # the fill goes to the server and back into the editor
            page.get_by_role("heading", name="Correct the mask").click()  # focus on the page for the shortcut
            page.keyboard.press("s")
            page.get_by_text("Saved the mask of f1").wait_for(timeout=60_000)
            page.wait_for_timeout(500)
            shot = QUEUE_SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path / QUEUE_SCREENSHOT.name
            page.screenshot(path=str(shot), clip={"x": 0, "y": 0, "width": 1400, "height": 1500})
            browser.close()
    finally:
        server.stop()
    from app.work_queue import open_queue as open_work_queue  # the test's open_queue opens it on the page

    mask = open_work_queue(frames, root=tmp_path / "annotations").open("f1.png").corrected
    assert (mask[:, 250:] == 0).all(), "the flood fill did not reach the saved mask"

    server = AppServer(env, log=tmp_path / "app2.log")  # a restart: the queue resumes with its counts
    try:
        with sync_playwright() as playwright:
            browser, page = open_app(playwright, server.url)
            open_queue(page)
            page.get_by_text("1 / 3 corrected").wait_for(timeout=60_000)
            assert page.get_by_text("2 pre-annotated").count() > 0
            page.get_by_text("Item 2 of 3: f2").wait_for(timeout=10_000)  # the first unfinished item
            browser.close()
    finally:
        server.stop()
