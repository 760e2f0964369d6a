"""A real browser (Debian's Chromium, headless, via Playwright) drives the app: upload, segment, paint a stroke,
synthesize, save; the saved mask must hold the stroke's class at the stroke's pixels (saves docs/screenshot.png);
an example layout must show on the editor's canvas."""

import io
import json
import os
import time
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from app_server import ROOT, AppServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]
SCREENSHOT = ROOT / "docs" / "screenshot.png"
STROKE_CLASS = "Bicyclist"
STROKE_HALF_WIDTH = 110  # CSS pixels either side of the canvas centre


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's 'chromium' package (.ci/run does)")
    root = tmp_path_factory.mktemp("browser")
    env = {"SEMFLOW_CACHE": str(root / "cache"), "SEMFLOW_ANNOTATIONS_DIR": str(root / "annotations")}
    app = AppServer(env, log=root / "app.log")
    app.root = root
    yield app
    app.stop()


def _street_photo(path: Path) -> None:
    """A project-made test picture: a drawn street layout in its display colours, lightly textured."""
    from app.examples import draw_layouts
    from semflow.labels import CAMVID

    _, ids = draw_layouts(CAMVID)[0]
    rng = np.random.default_rng(0)
    picture = CAMVID.colorize(ids).astype(np.int64) + rng.integers(-12, 13, ids.shape + (3,))
    PIL.Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8)).save(path)


def _open_app(playwright, url: str):
    """A headless Chromium page on the app, once the mask editor is there; returns (browser, page)."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    page.goto(url, wait_until="load")
    page.wait_for_selector("#mask-editor", timeout=60_000)
    return browser, page


def _screenshot(page, region: dict) -> bytes:
    """PNG bytes of a page region given as (a superset of) x, y, width, height in CSS pixels."""
    return page.screenshot(clip={k: region[k] for k in ("x", "y", "width", "height")})


def _shown(page, region: dict) -> np.ndarray:
    """The on-screen pixels of a page region, (H, W, 3) int."""
    return np.asarray(PIL.Image.open(io.BytesIO(_screenshot(page, region))).convert("RGB")).astype(int)


def _stroke_share(page, cx: float, cy: float, colour) -> float:
    """Share of the on-screen pixels along the stroke's centre line that show the stroke's colour."""
    shown = _shown(page, {"x": cx - STROKE_HALF_WIDTH / 2, "y": cy - 2, "width": STROKE_HALF_WIDTH, "height": 4})
    return float((np.abs(shown - np.asarray(colour)).sum(-1) < 40).mean())


def _wait_until_canvas_settles(page, box: dict, timeout: float = 30) -> None:
    """The editor loads its background and layer asynchronously: wait for two identical frames 0.3 s apart."""
    previous, deadline = None, time.time() + timeout
    while time.time() < deadline:
        frame = _screenshot(page, box)
        if frame == previous:
            return
        previous = frame
        page.wait_for_timeout(300)
    raise AssertionError(f"the editor canvas kept changing for {timeout} s")


def _canvas_is_uncovered(page, box: dict) -> bool:
    centre = [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2]
    return page.evaluate("([x, y]) => document.elementFromPoint(x, y).tagName", centre) == "CANVAS"


def _paint_stroke(page, cx: float, cy: float) -> None:
    page.mouse.move(cx - STROKE_HALF_WIDTH, cy)
    page.mouse.down()
    for k in range(23):
        page.mouse.move(cx - STROKE_HALF_WIDTH + k * STROKE_HALF_WIDTH / 11, cy, steps=2)
    page.mouse.up()


def test_segment_paint_synthesize_save(server, tmp_path):
    from playwright.sync_api import sync_playwright

    from semflow import load_pipeline

    photo = tmp_path / "street.png"
    _street_photo(photo)
    pipe = load_pipeline(os.environ.get("SEMFLOW_MODEL"))
    predicted = pipe.segment(PIL.Image.open(photo)).labels[0]
    stroke_class = pipe.labels.class_names.index(STROKE_CLASS)

    with sync_playwright() as playwright:
        browser, page = _open_app(playwright, server.url)
        page.set_input_files("input[type=file] >> nth=0", str(photo))
        page.get_by_text("Loaded a 480x360 image").wait_for(timeout=60_000)
        page.get_by_role("button", name="Segment", exact=True).click()
        page.locator(".semflow-legend >> text=%").first.wait_for(timeout=60_000)

        editor = page.locator("#mask-editor")
        box = editor.locator(".pixi-target canvas").bounding_box()
        _wait_until_canvas_settles(page, box)
        assert _canvas_is_uncovered(page, box), "something (a progress overlay?) covers the editor's canvas"
        zoom = float(editor.locator(".zoom-number").inner_text().strip().rstrip("%")) / 100
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        colour = pipe.labels.colors[stroke_class]
        assert _stroke_share(page, cx, cy, colour) < 0.5, "the prediction already shows the stroke's class there"
        editor.get_by_role("button", name="Brush", exact=True).click()
        editor.get_by_role("button", name="Color", exact=True).click()
        editor.locator("menu.swatch button.color").nth(stroke_class).click()
        _paint_stroke(page, cx, cy)
        assert _stroke_share(page, cx, cy, colour) > 0.9, "the painted stroke does not show on the canvas"

        page.get_by_role("button", name="Synthesize", exact=True).click()
        page.get_by_text("Round trip").wait_for(timeout=120_000)
        page.get_by_role("button", name="Save image + corrected mask").click()
        page.get_by_text("Saved", exact=False).first.wait_for(timeout=60_000)
        page.wait_for_timeout(500)
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        browser.close()

    rows = [json.loads(line) for line in (server.root / "annotations" / "metadata.jsonl").read_text().splitlines()]
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
        browser, page = _open_app(playwright, server.url)
        layouts = page.locator(".block", has=page.get_by_text("Example layouts", exact=False)).last
        layouts.get_by_role("button").first.click()
        page.get_by_text("Layout loaded into the editor").wait_for(timeout=60_000)
        box = page.locator("#mask-editor .pixi-target canvas").bounding_box()
        _wait_until_canvas_settles(page, box)
        assert _canvas_is_uncovered(page, box), "something (a progress overlay?) covers the editor's canvas"
        shown = _shown(page, box)
        browser.close()
    assert (shown.min(-1) < 200).mean() > 0.3, "the layout does not show on the editor's canvas"
