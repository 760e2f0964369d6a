"""ODE integration of a velocity field in either direction (sign of dt): Euler, Heun and adaptive RK45."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import limits
from .deprecation import warn_renamed
from .limits import SOLVERS

__all__ = ["SOLVERS", "Integration", "integrate", "time_grid"]

VelocityFn = Callable[[torch.Tensor, float], torch.Tensor]


@dataclass
class Integration:
    """Result of `integrate`.

    Attributes:
        x: Final state at `t_end`.
        trajectory: States at `times` (the first is the start), or ``None`` unless asked for.
        times: The grid: every step of the fixed-step solvers; for RK45 the requested output times.
        nfe: Number of velocity evaluations.
    """

    x: torch.Tensor
    trajectory: list[torch.Tensor] | None
    times: list[float]
    nfe: int


def time_grid(t_start: float, t_end: float, num_steps: int) -> list[float]:
    """Exact uniform grid t_i = t_start + (t_end − t_start)·i/N, i = 0..N, for any N (endpoints exact)."""
    return [t_start + (t_end - t_start) * i / num_steps for i in range(num_steps)] + [float(t_end)]


def integrate(
    velocity_fn: VelocityFn,
    x: torch.Tensor,
    t_start: float,
    t_end: float,
    num_steps: int = 1,
    solver: str = "euler",
    rtol: float = 1e-3,
    atol: float = 1e-3,
    return_trajectory: bool = False,
    on_step: Callable[[], None] | None = None,
) -> Integration:
    """Integrate dx/dt = v(x, t) from `t_start` to `t_end` (forward when t_end > t_start, reverse otherwise).

    Args:
        velocity_fn: ``v(x, t)`` with `t` a Python float in [0, 1].
        x: Start state at `t_start`, any shape.
        num_steps: Steps of Euler/Heun (1..`limits.MAX_STEPS`); for RK45 only the number of trajectory intervals.
        solver: ``"euler"`` (1 evaluation a step), ``"heun"`` (2, second order) or ``"rk45"`` (Dormand–Prince,
            adaptive, via torchdiffeq, with `rtol`/`atol`).
        return_trajectory: Keep the state at every grid time.
        on_step: Called after each Euler/Heun step, or after each RK45 evaluation (for progress bars).
    """
    solver, num_steps = limits.check_solver(solver), limits.check_steps(num_steps)
    times = time_grid(float(t_start), float(t_end), num_steps)
    nfe = 0

    def v(x_t: torch.Tensor, t: float) -> torch.Tensor:
        nonlocal nfe
        nfe += 1
        return velocity_fn(x_t, t)

    if solver == "rk45":
        return _integrate_rk45(v, x, times, rtol, atol, return_trajectory, on_step, lambda: nfe)

    trajectory = [x] if return_trajectory else None
    for t, t_next in zip(times[:-1], times[1:]):
        dt = t_next - t  # negative when integrating mask → image
        velocity = v(x, t)
        if solver == "euler":
            x = x + dt * velocity  # x_{i+1} = x_i + dt·v(x_i, t_i)
        else:
            velocity_next = v(x + dt * velocity, t_next)
            x = x + 0.5 * dt * (velocity + velocity_next)  # trapezoid on the Euler predictor
        if trajectory is not None:
            trajectory.append(x)
        if on_step is not None:
            on_step()
    return Integration(x=x, trajectory=trajectory, times=times, nfe=nfe)


def _integrate_rk45(v, x, times, rtol, atol, return_trajectory, on_step, count) -> Integration:
    from torchdiffeq import odeint

    def f(t: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
        velocity = v(x_t, float(t))
        if on_step is not None:
            on_step()
        return velocity

    grid = times if return_trajectory else [times[0], times[-1]]
    states = odeint(f, x, torch.tensor(grid, dtype=torch.float64), rtol=rtol, atol=atol, method="dopri5")
    trajectory = list(states.unbind(0)) if return_trajectory else None
    return Integration(x=states[-1], trajectory=trajectory, times=grid, nfe=count())


def check_solver(solver: str, num_steps: int) -> None:
    """Deprecated: `semflow.limits.check_solver` and `semflow.limits.check_steps`, where the rules now live."""
    warn_renamed("semflow.solvers.check_solver", "semflow.limits.check_solver and semflow.limits.check_steps")
    limits.check_solver(solver)
    limits.check_steps(num_steps)
