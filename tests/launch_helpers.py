"""`accelerate launch --multi_gpu --num_processes N` of the tests: several processes on this CPU-only machine (one
thread each), on a rendezvous port of their own."""

from __future__ import annotations

import os
import subprocess
import sys

from ports import free_port_in

RENDEZVOUS_PORTS = range(29600, 29700)  # torch.distributed's rendezvous ports of these tests


def rendezvous_port() -> int:
    return free_port_in(RENDEZVOUS_PORTS, "the rendezvous")


def launch_command(processes: int, module: str, *args: str) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of `accelerate launch --multi_gpu --num_processes N -m module args`."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
               str(rendezvous_port()), "-m", module, *args]
    return command, {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}


def accelerate_launch(processes: int, module: str, *args: str) -> subprocess.CompletedProcess:
    """`launch_command` run to its end, its output captured."""
    command, env = launch_command(processes, module, *args)
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
