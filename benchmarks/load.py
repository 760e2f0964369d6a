"""Load test of the launched app: one client, then N clients each doing rounds of segment → synthesize → save through
`gradio_client`; throughput against the best single-client rate, p50/p95 latency per endpoint, failures. Prints a
Markdown table; asserts nothing.

    python -m benchmarks.load [--clients 16] [--rounds 3] [--single 5] [--model semflow]

The app runs as `python app.py` in a subprocess on a free port, with a temporary annotation folder, as a user would
start it; nothing else should run on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTO = sorted((ROOT / "app" / "example_photos").glob("*.png"))[0]
ENDPOINTS = ("/segment", "/synthesize", "/save_annotation")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(folder: Path, model: str | None) -> tuple[subprocess.Popen, str]:
    """`python app.py` on a free port; returns (process, url) once it answers."""
    from gradio_client import Client

    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "SEMFLOW_ANNOTATIONS_DIR": str(folder / "annotations"), "SEMFLOW_CACHE": str(folder / "cache"),
           "SEMFLOW_QUEUE_SIZE": "256", "GRADIO_ANALYTICS_ENABLED": "False"}
    if model:
        env["SEMFLOW_MODEL"] = model
    log = open(folder / "app.log", "w")
    process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url, deadline = f"http://127.0.0.1:{port}/", time.time() + 300
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the app exited with {process.returncode}; see {folder / 'app.log'}")
        try:
            Client(url, verbose=False)
            return process, url
        except Exception:
            time.sleep(1)
    process.kill()
    raise SystemExit("the app did not answer within 300 s")


def one_round(client, mask: str | None, timings: dict[str, list[float]], failures: list[str]) -> str | None:
    """segment → synthesize (from the segmented mask) → save; each call timed under its endpoint."""
    from gradio_client import handle_file

    def call(endpoint: str, *args):
        start = time.perf_counter()
        try:
            result = client.predict(*args, api_name=endpoint)
        except Exception as error:  # a failed request is a figure here, not a crash
            failures.append(f"{endpoint}: {str(error)[:120]}")
            return None
        timings[endpoint].append(time.perf_counter() - start)
        return result

    segmented = call("/segment", handle_file(str(PHOTO)))
    mask = segmented[0] if segmented else mask
    if mask is not None:
        call("/synthesize", handle_file(mask))
        call("/save_annotation", handle_file(str(PHOTO)), handle_file(mask), "load test", PHOTO.name)
    return mask


def run(url: str, clients: int, rounds: int) -> tuple[dict[str, list[float]], list[str], float]:
    """`clients` threads, each with its own client, doing `rounds` rounds; returns (timings, failures, wall s)."""
    from gradio_client import Client

    timings: dict[str, list[float]] = {endpoint: [] for endpoint in ENDPOINTS}
    failures: list[str] = []
    connected = [Client(url, verbose=False) for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def work(client) -> None:
        barrier.wait()
        mask = None
        for _ in range(rounds):
            mask = one_round(client, mask, timings, failures)

    threads = [threading.Thread(target=work, args=(client,)) for client in connected]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return timings, failures, time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per client at load")
    parser.add_argument("--single", type=int, default=5, help="rounds of the single client (after one warm-up)")
    parser.add_argument("--model", default=None, help="SEMFLOW_MODEL for the app (default: the embedded default)")
    args = parser.parse_args(argv)
    command = "python -m benchmarks.load " + " ".join(argv if argv is not None else sys.argv[1:])
    with tempfile.TemporaryDirectory() as folder:
        process, url = start_app(Path(folder), args.model)
        try:
            run(url, 1, 1)  # warm-up
            single, single_failures, single_wall = run(url, 1, args.single)
            loaded, failures, wall = run(url, args.clients, args.rounds)
        finally:
            process.terminate()
            process.wait(timeout=30)
    rate_1 = len(single["/synthesize"]) / single_wall
    rate_n = len(loaded["/synthesize"]) / wall
    lines = [f"{args.clients} clients × {args.rounds} rounds of segment → synthesize → save against `python app.py` "
             f"(one model slot), after one client × {args.single} rounds; seconds per request.", "",
             "| endpoint | 1 client p50 | 1 client p95 | N clients p50 | N clients p95 | requests at N | failed |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for endpoint in ENDPOINTS:
        failed = sum(f.startswith(endpoint) for f in failures)
        lines.append(f"| {endpoint} | {percentile(single[endpoint], 50):.2f} | {percentile(single[endpoint], 95):.2f} "
                     f"| {percentile(loaded[endpoint], 50):.2f} | {percentile(loaded[endpoint], 95):.2f} | "
                     f"{len(loaded[endpoint])} | {failed} |")
    lines += ["", f"Throughput (rounds per second): 1 client {rate_1:.3f}, {args.clients} clients {rate_n:.3f}, ratio "
                  f"{rate_n / rate_1:.2f} (target ≥ 0.8); failed requests: {len(failures) + len(single_failures)}.",
              "", f"Reproduce: `{command}`"]
    result = {"command": command, "single": single, "loaded": loaded, "wall_s": wall, "single_wall_s": single_wall,
              "rate_1": rate_1, "rate_n": rate_n, "failures": failures + single_failures,
              "markdown": "\n".join(lines)}
    print(result["markdown"])
    print(json.dumps({k: result[k] for k in ("rate_1", "rate_n", "failures")}))
    return result


if __name__ == "__main__":
    main()
