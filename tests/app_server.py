"""Launch `python app.py` in a subprocess for client and browser tests, talk to it over plain HTTP (the named API
routes, and the page's own queue route), and stop it afterwards."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ports import free_port_in

ROOT = Path(__file__).resolve().parents[1]


TEST_PORTS = range(7900, 8000)  # the ports this project's tests may serve on


def free_port() -> int:
    """A local port of `TEST_PORTS` that nothing listens on now, tried in random order: two test runs starting app
    servers at once (each binds its port only once its model is loaded) would otherwise both take the first."""
    return free_port_in(TEST_PORTS, "the test's app server")


class AppServer:
    """`python app.py` on a free local port, with the given environment over this one.

    The app's own variables (``SEMFLOW_*``) are not inherited from the shell: a test says every setting its server
    has. The port is the server's own even when ``GRADIO_SERVER_PORT`` is set in the shell or in `env`; `port` asks
    for one (a restarted app on its old port keeps its pages' browser storage, which is per address and port).
    """

    def __init__(self, env: dict[str, str], log: Path, timeout: float = 1800, cwd: Path = ROOT,
                 port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("SEMFLOW_")}
        full_env = {**inherited, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", **env,
                    "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(self.port)}
        self.log = open(log, "w")
        self.process = subprocess.Popen([sys.executable, "app.py"], cwd=cwd, env=full_env, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.process.returncode}: {log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(self.url, timeout=2)
                return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"app.py did not answer within {timeout} s: {log.read_text()[-3000:]}")

    def alive(self) -> bool:
        try:
            return urllib.request.urlopen(self.url, timeout=5).status == 200
        except OSError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()

    def get(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path.lstrip("/"), timeout=30) as response:
            return response.read().decode()

    def config(self) -> dict[str, Any]:
        return json.loads(self.get("config"))

    def post(self, path: str, body: str) -> tuple[int, str]:
        """POST a raw JSON `body`: (HTTP status, response text)."""
        return self.request("POST", path, body)

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, str]:
        """Any request, with a raw JSON `body` or none: (HTTP status, response text)."""
        request = urllib.request.Request(self.url + path.lstrip("/"), data=body.encode() if body else None,
                                         headers={"Content-Type": "application/json"}, method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def call_api(self, name: str, body: str) -> tuple[int, str]:
        """POST a raw JSON `body` to ``/gradio_api/call/<name>`` and read the result stream: (HTTP status, the stream's
        text, or the refusal's body)."""
        status, text = self.post(f"gradio_api/call/{name}", body)
        if status != 200:
            return status, text
        return status, self.get(f"gradio_api/call/{name}/{json.loads(text)['event_id']}")

    def upload(self, path: Path) -> dict[str, Any]:
        """Upload a file the way clients do; returns the file reference to put into a call's data."""
        boundary = secrets.token_hex(8)
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{path.name}\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + path.read_bytes() + \
            f"\r\n--{boundary}--\r\n".encode()
        request = urllib.request.Request(f"{self.url}gradio_api/upload", data=body,
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            (uploaded,) = json.load(response)
        return {"path": uploaded, "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}

    def page_event(self, api_name: str, data: list[Any], timeout: float = 120) -> dict[str, Any]:
        """Trigger one of the page's own events the way the page does (the queue, by the event's index) and return
        its completion message."""
        (fn_index,) = [d["id"] for d in self.config()["dependencies"] if d["api_name"] == api_name]
        session = secrets.token_hex(6)
        body = json.dumps({"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None,
                           "trigger_id": None}).encode()
        request = urllib.request.Request(f"{self.url}gradio_api/queue/join", data=body,
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=30).read()
        with urllib.request.urlopen(f"{self.url}gradio_api/queue/data?session_hash={session}",
                                    timeout=timeout) as stream:
            for line in stream:
                if line.startswith(b"data:"):
                    message = json.loads(line[5:])
                    if message.get("msg") == "process_completed":
                        return message
        raise AssertionError(f"the event {api_name} did not complete")
