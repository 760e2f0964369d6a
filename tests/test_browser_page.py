"""The page's layout and smaller promises in a real browser (Debian's Chromium, headless), on the shared server: on a
phone the title keeps whole words and the model picker goes under it; the editor's tools never lie over the photo and
it shows no "Layer 1"; fill messages appear under the fill tools; a typed opacity applies; the unsure heat-map shows
its key; the trajectory caption fits the default model and is not covered; an astronaut is said not to look like a
street scene."""

import pytest
from browser_helpers import open_app, require_chromium, segment_photo

pytestmark = pytest.mark.slow

PHOTO_RECT = """() => {  // the photo's rectangle on screen, from the editor's own geometry
    const editor = window.editor, canvas = editor.context.app.canvas.getBoundingClientRect();
    const images = editor.context.image_container;
    const a = images.toGlobal({x: 0, y: 0}), b = images.toGlobal({x: editor.width, y: editor.height});
    return {left: canvas.left + a.x, top: canvas.top + a.y, right: canvas.left + b.x, bottom: canvas.top + b.y};
}"""
TOOLS_RECT = """() => {  // the editor's tool strip (brush, eraser, colour, size) on screen
    let strip = document.querySelector('#mask-editor button[aria-label="Brush"]');
    while (strip.parentElement && strip.parentElement.querySelectorAll('button').length <= 6) {
        strip = strip.parentElement;
    }
    const rect = strip.getBoundingClientRect();
    return {left: rect.left, top: rect.top, right: rect.right, bottom: rect.bottom};
}"""


@pytest.fixture(scope="module")
def server(request):
    require_chromium()  # before the shared server starts: without Chromium there is nothing to drive it
    return request.getfixturevalue("app_server")


def _overlaps(a: dict, b: dict) -> bool:
    return a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]


def test_the_page_on_a_phone_and_on_a_desktop(server, tmp_path):
    import PIL.Image
    import skimage.data
    from playwright.sync_api import sync_playwright

    from app.examples import PHOTOS

    street = sorted(PHOTOS.glob("*.png"))[2]
    astronaut = tmp_path / "astronaut.png"
    PIL.Image.fromarray(skimage.data.astronaut()).save(astronaut)
    with sync_playwright() as playwright:
        browser, page = open_app(playwright, server.url)
        segment_photo(page, street, (480, 360))
        assert "Layer 1" not in page.locator("body").inner_text(), "the editor's layer is shown as 'Layer 1'"
        assert not _overlaps(page.evaluate(TOOLS_RECT), page.evaluate(PHOTO_RECT)), "the tools cover the photo"

        caption = page.locator("#trajectory-caption")
        assert "from Gaussian noise to the image" in caption.inner_text()
        caption.scroll_into_view_if_needed()
        box = caption.bounding_box()
        covering = page.evaluate("([x, y]) => document.elementFromPoint(x, y).closest('#trajectory-caption') !== null",
                                 [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2])
        assert covering, "something covers the trajectory caption"

        view = page.locator("#segmentation-view img")
        before = view.get_attribute("src")
        page.locator("#segmentation-view").scroll_into_view_if_needed()
        opacity = page.get_by_label("Mask opacity").first
        number = page.locator(".block", has=page.get_by_text("Mask opacity")).locator("input[type=number]").first
        number.fill("0.95")
        number.press("Enter")
        page.wait_for_function("(before) => document.querySelector('#segmentation-view img')?.src !== before",
                               arg=before, timeout=30_000)
        assert opacity.count() > 0

        page.get_by_label("Show where the model is unsure (red: low confidence)").check()
        page.locator(".semflow-unsure-scale", has_text="no tint").wait_for(timeout=30_000)

        page.get_by_label("flood fill (similar colour)").check()
        frame = view.bounding_box()
        page.mouse.click(frame["x"] + frame["width"] / 2, frame["y"] + frame["height"] * 0.3)
        page.wait_for_function("() => /at \\(\\d+, \\d+\\)/.test(document.querySelector('#fill-status').innerText)",
                               timeout=60_000)
        message = page.locator("#fill-status").bounding_box()
        column = page.locator("#segmentation-view").bounding_box()
        segment = page.get_by_role("button", name="Segment", exact=True).bounding_box()
        assert column["x"] - 20 <= message["x"] < column["x"] + column["width"], "the fill message is elsewhere"
        assert message["y"] > column["y"] + column["height"], "the fill message is not under the segmentation view"
        assert message["x"] > segment["x"] + segment["width"], "the fill message is in the other column"

        page.set_viewport_size({"width": 390, "height": 844})  # a phone
        page.wait_for_timeout(1000)
        title = page.locator("h1", has_text="SemFlow Studio").bounding_box()
        line = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('h1')).lineHeight)")
        assert title["height"] < 1.5 * line, f"the title wraps ({title['height']} px for {line} px lines)"
        picker = page.get_by_role("combobox", name="Model").bounding_box()
        assert picker["y"] > title["y"] + title["height"], "the model picker is not under the title"
        page.locator("#mask-editor").scroll_into_view_if_needed()
        page.wait_for_timeout(1000)
        assert not _overlaps(page.evaluate(TOOLS_RECT), page.evaluate(PHOTO_RECT)), "the tools cover the photo"

        page.set_viewport_size({"width": 1400, "height": 2400})
        segment_photo(page, astronaut, (512, 512))
        status = page.get_by_text("does not look like the street scenes the model knows").first
        assert status.is_visible()
        browser.close()
