"""What the browser tests share: Debian's Chromium launched headless through Playwright on an app page, screenshots of
page regions, waiting for the mask editor's canvas, picking a class brush by key and painting a stroke, and the
editor's own layer read back."""

from __future__ import annotations

import io
import os
import time

import numpy as np
import PIL.Image
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]
STROKE_HALF_WIDTH = 110  # CSS pixels either side of the canvas centre


def require_chromium() -> None:
    """Browser tests need Debian's Chromium: without it they skip with a sentence saying how to install it, except
    under ``CI=true`` (as `.ci/run` runs), where a missing Chromium fails them."""
    if os.path.exists(CHROMIUM):
        return
    message = (f"the browser tests need Debian's Chromium at {CHROMIUM}: install it with `apt-get install chromium` "
               f"(.ci/run does)")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def open_app(playwright, url: str, context=None, **page_options):
    """A headless Chromium page on the app, once the mask editor is there; returns (browser or context, page).

    With `context` (a Playwright browser context), the page opens in it and the context is returned: pages of one
    context share their browser storage, as the tabs of one person do."""
    require_chromium()
    if context is None:
        owner = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = owner.new_page(viewport={"width": 1400, "height": 2400}, **page_options)
    else:
        owner, page = context, context.new_page()
    page.goto(url, wait_until="load")
    page.wait_for_selector("#mask-editor", timeout=60_000)
    page.wait_for_function("() => window.semflowEditorReady === true", timeout=60_000)
    return owner, page


def launch(playwright):
    require_chromium()
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def screenshot(page, region: dict) -> bytes:
    """PNG bytes of a page region given as (a superset of) x, y, width, height in CSS pixels."""
    return page.screenshot(clip={k: region[k] for k in ("x", "y", "width", "height")})


def shown(page, region: dict) -> np.ndarray:
    """The on-screen pixels of a page region, (H, W, 3) int."""
    return np.asarray(PIL.Image.open(io.BytesIO(screenshot(page, region))).convert("RGB")).astype(int)


def stroke_share(page, cx: float, cy: float, colour) -> float:
    """Share of the on-screen pixels along the stroke's centre line that show the stroke's colour."""
    pixels = shown(page, {"x": cx - STROKE_HALF_WIDTH / 2, "y": cy - 2, "width": STROKE_HALF_WIDTH, "height": 4})
    return float((np.abs(pixels - np.asarray(colour)).sum(-1) < 40).mean())


def wait_until_canvas_settles(page, box: dict, timeout: float = 30) -> None:
    """The editor loads its background and layer asynchronously: wait for two identical frames 0.3 s apart."""
    previous, deadline = None, time.time() + timeout
    while time.time() < deadline:
        frame = screenshot(page, box)
        if frame == previous:
            return
        previous = frame
        page.wait_for_timeout(300)
    raise AssertionError(f"the editor canvas kept changing for {timeout} s")


def canvas_is_uncovered(page, box: dict) -> bool:
    centre = [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2]
    return page.evaluate("([x, y]) => document.elementFromPoint(x, y).tagName", centre) == "CANVAS"


def canvas_box(page) -> dict:
    return page.locator("#mask-editor .pixi-target canvas").bounding_box()


def pick_class(page, key: str, colour: tuple[int, int, int]) -> None:
    """Press a class's key (with the focus on the page, not a text field) and wait until the editor's brush has its
    colour: the page script picks the swatch a moment later, and a stroke started before would have the old one."""
    page.get_by_role("heading", name="Correct the mask").click()
    page.keyboard.press(key)
    hex_colour = "#" + "".join(f"{channel:02x}" for channel in colour)
    page.wait_for_function("(hex) => window.editor.tools.get('brush').state.color === hex", arg=hex_colour,
                           timeout=10_000)


def paint_stroke(page, cx: float, cy: float) -> None:
    page.mouse.move(cx - STROKE_HALF_WIDTH, cy)
    page.mouse.down()
    for k in range(23):
        page.mouse.move(cx - STROKE_HALF_WIDTH + k * STROKE_HALF_WIDTH / 11, cy, steps=2)
    page.mouse.up()


def editor_layer(page) -> np.ndarray:
    """The mask layer as the editor itself holds it (what the page sends when an event reads the editor), (H, W, 4)."""
    data = page.evaluate("""async () => {
        const blobs = await window.editor.get_blobs();
        return Array.from(new Uint8Array(await blobs.layers[0].arrayBuffer()));
    }""")
    return np.asarray(PIL.Image.open(io.BytesIO(bytes(data))).convert("RGBA"))


def editor_size(page) -> tuple[int, int]:
    """(width, height) of the editor's canvas content (its background)."""
    return tuple(page.evaluate("() => [window.editor.width, window.editor.height]"))


def segment_photo(page, path, size: tuple[int, int]) -> None:
    """Upload the photo at `path` (`size`: its width and height), press Segment and wait until the editor shows the
    prediction."""
    page.set_input_files("input[type=file] >> nth=0", str(path))
    page.get_by_text(f"Loaded a {size[0]}x{size[1]} image").wait_for(timeout=60_000)
    page.get_by_role("button", name="Segment", exact=True).click()
    page.get_by_text("Segmented in").wait_for(timeout=60_000)
    wait_until_canvas_settles(page, canvas_box(page))
