"""The launched app (the shared server, embedded default model) through gradio_client and plain HTTP: /segment,
/synthesize, /edit, /save_annotation, bad inputs and bad numbers, concurrent saves; the page's events are not API and
pushing needs an identity; the model is recorded by its identity, never a path; no event that fills the mask editor
puts its progress overlay on it."""

import json
import threading

import numpy as np
import PIL.Image
import pytest
from app_server import ROOT
from conftest import ANNOTATIONS_REPO, SERVER_TOKEN
from gradio_client import Client, handle_file

from semflow.loading import MODELS_DIR

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(app_server):
    return app_server


@pytest.fixture(scope="module")
def client(server):
    # a long read timeout: on a loaded machine (training jobs beside the tests) the first config fetch took over 5 s
    return Client(server.url, verbose=False, httpx_kwargs={"timeout": 120})


@pytest.fixture(scope="module")
def files(tmp_path_factory, decompression_bomb):
    folder = tmp_path_factory.mktemp("files")
    rng = np.random.default_rng(0)
    rgb = PIL.Image.fromarray(rng.integers(0, 256, (61, 83, 3), dtype=np.uint8))
    paths = {"rgb": folder / "street.png", "rgba": folder / "rgba.png", "gray": folder / "gray.png",
             "cmyk": folder / "cmyk.jpg", "text": folder / "notes.txt", "dot": folder / "dot.png",
             "huge": decompression_bomb, "mask": folder / "mask.png", "off": folder / "off_palette.png",
             "small_mask": folder / "small_mask.png"}
    rgb.save(paths["rgb"])
    rgb.convert("RGBA").save(paths["rgba"])
    rgb.convert("L").save(paths["gray"])
    rgb.convert("CMYK").save(paths["cmyk"])
    paths["text"].write_text("this is not an image")
    PIL.Image.new("RGB", (1, 1)).save(paths["dot"])
    PIL.Image.fromarray(rng.integers(0, 12, (61, 83)).astype(np.uint8)).save(paths["mask"])
    PIL.Image.new("RGB", (83, 61), (1, 2, 3)).save(paths["off"])
    PIL.Image.fromarray(np.zeros((30, 40), np.uint8)).save(paths["small_mask"])
    return paths


def _still_answers(server, client, files):
    assert server.alive()
    ids_path, _ = client.predict(handle_file(str(files["rgb"])), api_name="/segment")
    assert PIL.Image.open(ids_path).size == (83, 61)


@pytest.mark.parametrize("kind", ["rgb", "rgba", "gray", "cmyk"])
def test_segment_any_mode(client, files, kind):
    ids_path, overlay_path = client.predict(handle_file(str(files[kind])), 1, "euler", 0.5, api_name="/segment")
    ids = PIL.Image.open(ids_path)
    assert ids.mode == "L" and ids.size == (83, 61) and np.asarray(ids).max() < 11
    assert PIL.Image.open(overlay_path).size == (83, 61)


def test_synthesize_and_save(client, files, server):
    result = client.predict(handle_file(str(files["mask"])), 5, 2, 20.0, 2, "heun", api_name="/synthesize")
    assert len(result) == 2
    images = [PIL.Image.open(item["image"]) for item in result]
    assert all(im.size == (83, 61) for im in images)
    assert not np.array_equal(np.asarray(images[0]), np.asarray(images[1]))
    saved = client.predict(handle_file(str(files["rgb"])), handle_file(str(files["mask"])), "tester", "street.png",
                           api_name="/save_annotation")
    assert saved["annotations"] >= 1 and (server.root / "annotations" / "masks" / f"{saved['saved']}.png").is_file()


def test_edit_keeps_the_photo_outside_the_changed_region(client, files, tmp_path):
    # Segment the photo, give a box of it another class, edit: the photo's own pixels outside the region it returns,
    # new ones in the box; each variant its own seed.
    photo = np.asarray(PIL.Image.open(files["rgb"]).convert("RGB"))
    ids_path, _ = client.predict(handle_file(str(files["rgb"])), api_name="/segment")
    ids = np.asarray(PIL.Image.open(ids_path)).copy()
    box = (slice(20, 40), slice(30, 60))
    ids[box] = np.where(ids[box] == 8, 4, 8)  # Car, or Pavement where it was a car
    PIL.Image.fromarray(ids).save(tmp_path / "edited.png")
    images, region_path = client.predict(handle_file(str(files["rgb"])), handle_file(str(tmp_path / "edited.png")),
                                         3, 2, 4, 0.0, api_name="/edit")
    region = np.asarray(PIL.Image.open(region_path)) > 0
    # the box (rows 20-39, columns 30-59) grown by the margin, 4 pixels
    assert region[16:44, 26:64].all() and region.sum() == 28 * 38
    assert len(images) == 2
    edited = [np.asarray(PIL.Image.open(item["image"]).convert("RGB")) for item in images]
    for image in edited:
        assert image.shape == photo.shape and np.array_equal(image[~region], photo[~region])
        assert np.abs(image[box].astype(int) - photo[box]).mean() > 1, "the box re-synthesized"
    assert not np.array_equal(edited[0], edited[1]), "seeds 3 and 4 differ"
    with pytest.raises(Exception, match="Nothing to edit"):
        client.predict(handle_file(str(files["rgb"])), handle_file(ids_path), api_name="/edit")
    with pytest.raises(Exception, match="same size|must be 83x61"):
        client.predict(handle_file(str(files["rgb"])), handle_file(str(files["small_mask"])), api_name="/edit")
    with pytest.raises(Exception, match="Margin must be between 0 and"):
        client.predict(handle_file(str(files["rgb"])), handle_file(str(tmp_path / "edited.png")), 0, 1, 500,
                       api_name="/edit")


@pytest.mark.parametrize("endpoint,args,message", [
    ("/segment", ("text",), "not a readable image"),
    ("/segment", ("dot",), "at least 8 pixels"),
    ("/segment", ("huge",), "too large|megapixels"),
    ("/synthesize", ("off",), "outside the 'camvid' palette"),
    ("/synthesize", ("text",), "mask is not a readable image"),
    ("/save_annotation", ("rgb", "small_mask"), "same size"),
    ("/save_annotation", ("rgb", None), "provide a mask"),
    ("/save_annotation", (None, "mask"), "upload an image"),
])
def test_bad_inputs_get_a_plain_error_and_the_server_keeps_answering(client, server, files, endpoint, args, message):
    inputs = [handle_file(str(files[a])) if a else None for a in args]
    with pytest.raises(Exception, match=message):
        client.predict(*inputs, api_name=endpoint)
    _still_answers(server, client, files)


def test_bad_settings(client, server, files):
    with pytest.raises(Exception, match="not in the list of choices"):
        client.predict(handle_file(str(files["rgb"])), 1, "ddim", api_name="/segment")
    with pytest.raises(Exception, match="β must be"):
        client.predict(handle_file(str(files["mask"])), 0, 1, 500.0, api_name="/synthesize")
    with pytest.raises(Exception, match="between 1 and 4 variants"):
        client.predict(handle_file(str(files["mask"])), 0, 9, api_name="/synthesize")
    _still_answers(server, client, files)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", '"abc"', "2.5", "-1"])
def test_bad_numbers_through_the_api_get_a_sentence(server, files, value):
    # gradio_client cannot send NaN or infinity (strict JSON): the raw HTTP route can, and Gradio's own number
    # handling used to fail on them with a bare "Error".
    image, mask = json.dumps(server.upload(files["rgb"])), json.dumps(server.upload(files["mask"]))
    status, stream = server.call_api("segment", f'{{"data": [{image}, {value}, "euler", 0.5]}}')
    assert status == 200 and "event: error" in stream and "Steps must be" in stream, stream
    status, stream = server.call_api("synthesize", f'{{"data": [{mask}, {value}, 1, 20.0, 2, "euler"]}}')
    assert status == 200 and "event: error" in stream and "Seed must be" in stream, stream
    assert '"error": null' not in stream


def test_the_pages_events_are_not_api_endpoints(server, files):
    info = json.loads(server.get("gradio_api/info"))
    assert set(info["named_endpoints"]) == {"/segment", "/synthesize", "/edit", "/save_annotation", "/model_info"}
    page_events = [d["api_name"] for d in server.config()["dependencies"] if d["api_name"].startswith("ui_")]
    assert {"ui_segment", "ui_synthesize", "ui_save_annotation", "ui_push_annotations"} <= set(page_events)
    for name in page_events:
        for route in ("call", "call/v2", "run", "api"):
            status, body = server.post(f"gradio_api/{route}/{name}", '{"data": []}')
            assert status == 404 and "no API endpoint" in body, (route, name, status, body)
    status, stream = server.call_api("model_info", '{"data": []}')  # the public ones still answer
    assert status == 200 and "event: complete" in stream


def test_every_route_of_the_running_app_runs_only_the_named_endpoints(server):
    # The running app's route table (its FastAPI schema): every route that takes a part of the path, with every name of
    # the page's own events in every such part, is refused; the public endpoints answer.
    import re

    status, schema = server.request("GET", "openapi.json")
    assert status == 200, schema
    routes = json.loads(schema)["paths"]
    assert "/gradio_api/queue/join" in routes and "/config" in routes, "the app's own table, not a part of it"
    public = {"segment", "synthesize", "edit", "save_annotation", "model_info"}
    page_events = {d["api_name"] for d in server.config()["dependencies"] if d["api_name"]} - public
    assert {"ui_segment", "ui_open_queue", "ui_fill", "ui_push_annotations", "load_example"} <= page_events
    named = {path: methods for path, methods in routes.items() if "{" in path}
    assert {"/gradio_api/call/{api_name}", "/gradio_api/run/{api_name}", "/gradio_api/api/{api_name}",
            "/gradio_api/call/v2/{api_name}"} <= set(named), "the routes that run an event by name"
    for path, methods in named.items():
        for method in methods:
            for name in page_events:
                status, body = server.request(method.upper(), re.sub(r"\{[^}]+\}", name, path), '{"data": []}')
                assert status == 404 and (method == "head" or "no API endpoint" in body), (method, path, name)
    for path, request in (("call", '{"data": []}'), ("call/v2", "{}"), ("run", '{"data": []}'),
                          ("api", '{"data": []}')):
        status, body = server.post(f"gradio_api/{path}/model_info", request)
        assert status == 200 and ("event_id" in body or "symmetric-camvid" in body), (path, status, body)


def test_pushing_needs_an_identity(server):
    # The server has SEMFLOW_ANNOTATIONS_REPO and HF_TOKEN but no sign-in and no operator permission to push with its
    # own token: the push button's event, triggered the way the page triggers it, must refuse with a sentence.
    status, body = server.call_api("ui_push_annotations", '{"data": []}')
    assert status == 404
    message = server.page_event("ui_push_annotations", [])
    assert message["success"] is False and "identity" in message["output"]["error"], message
    assert "SEMFLOW_PUSH_WITH_SERVER_TOKEN" in message["output"]["error"]
    from app.annotations import AnnotationStore
    from app.store.schema import SavedRow

    with AnnotationStore(server.root / "annotations").db.read("test") as session:
        assert session.query(SavedRow).filter(SavedRow.pushed_at.isnot(None)).count() == 0, "nothing was pushed"
    for page in ("config", "gradio_api/info", ""):
        assert SERVER_TOKEN not in server.get(page)
    assert ANNOTATIONS_REPO not in json.dumps(message)


def test_the_model_is_recorded_by_its_identity_never_a_path(client, server, files):
    info = client.predict(api_name="/model_info")
    assert info["model"] == "symmetric-camvid (embedded)" and info["revision"].startswith("sha256:")
    assert info["notice"] is None and info["formulation"] == "symmetric"
    for text in (json.dumps(info), server.get("config"), server.get("")):
        assert str(ROOT) not in text and str(MODELS_DIR) not in text
    saved = client.predict(handle_file(str(files["rgb"])), handle_file(str(files["mask"])), "tester", "street.png",
                           api_name="/save_annotation")
    rows = [json.loads(line) for line in (server.root / "annotations" / "metadata.jsonl").read_text().splitlines()]
    (row,) = [r for r in rows if r["file_name"] == f"images/{saved['saved']}.png"]
    assert row["model"] == info["model"] and row["model_revision"] == info["revision"]
    assert str(ROOT) not in json.dumps(row)


def test_concurrent_saves_are_all_kept(server, files):
    import datasets

    before = len(datasets.load_dataset("imagefolder", data_dir=str(server.root / "annotations"), split="train")) \
        if (server.root / "annotations" / "metadata.jsonl").is_file() else 0
    errors, names = [], []

    def save(k: int) -> None:
        try:
            result = Client(server.url, verbose=False).predict(
                handle_file(str(files["rgb"])), handle_file(str(files["mask"])), f"annotator-{k}", f"frame{k}.png",
                api_name="/save_annotation")
            names.append(result["saved"])
        except Exception as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=save, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and len(set(names)) == 8
    loaded = datasets.load_dataset("imagefolder", data_dir=str(server.root / "annotations"), split="train")
    assert len(loaded) == before + 8
    assert {f"annotator-{k}" for k in range(8)} <= set(loaded["annotator"])
    ours = [row for row in loaded if row["annotator"].startswith("annotator-")]  # the shared server keeps others
    assert all(np.asarray(row["mask"]).shape == (61, 83) for row in ours)


def test_events_that_fill_the_editor_keep_its_canvas_free_of_progress_overlays(server):
    # Under load Gradio left the segmentation spinner over the editor's canvas for good (nothing could be painted).
    config = server.config()
    editor = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "mask-editor")
    filling = {d["api_name"]: d["show_progress_on"] for d in config["dependencies"] if editor in d["outputs"]}
    assert {"ui_load_image", "ui_segment", "ui_blank_layout", "ui_load_layout"} <= set(filling)
    assert all(on and editor not in on for on in filling.values()), filling
