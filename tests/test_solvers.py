"""ODE solvers: exact time grids, exact on constant fields both ways, convergence orders, round trips."""

import math

import pytest
import torch

from semflow.solvers import integrate, time_grid


@pytest.mark.parametrize("n", [1, 3, 7, 25])
def test_time_grid_is_exact_uniform(n):
    grid = time_grid(0.0, 1.0, n)
    assert len(grid) == n + 1 and grid[0] == 0.0 and grid[-1] == 1.0
    assert all(math.isclose(b - a, 1.0 / n, rel_tol=1e-12) for a, b in zip(grid, grid[1:]))
    assert time_grid(1.0, 0.0, n) == grid[::-1] or all(
        math.isclose(a, b, abs_tol=1e-15) for a, b in zip(time_grid(1.0, 0.0, n), grid[::-1]))


@pytest.mark.parametrize("solver", ["euler", "heun", "rk45"])
@pytest.mark.parametrize("n", [1, 3, 7, 25])
def test_constant_field_is_integrated_exactly_in_both_directions(solver, n):
    c = torch.tensor([0.7, -1.3, 2.0], dtype=torch.float64)
    x0 = torch.tensor([0.1, 0.2, -0.3], dtype=torch.float64)
    forward = integrate(lambda x, t: c.expand_as(x), x0, 0.0, 1.0, n, solver)
    assert torch.allclose(forward.x, x0 + c, atol=1e-12, rtol=0)
    reverse = integrate(lambda x, t: c.expand_as(x), forward.x, 1.0, 0.0, n, solver)
    assert torch.allclose(reverse.x, x0, atol=1e-12, rtol=0)
    if solver == "euler":
        assert forward.nfe == n
    if solver == "heun":
        assert forward.nfe == 2 * n


def _curved(x, t):
    return x * math.cos(t) + t  # dx/dt = x·cos t + t


def _error(solver, n, **kwargs):
    from scipy.integrate import solve_ivp

    exact = solve_ivp(lambda t, x: x * math.cos(t) + t, (0, 1), [1.0], rtol=1e-12, atol=1e-12).y[0, -1]
    x = integrate(_curved, torch.tensor([1.0], dtype=torch.float64), 0.0, 1.0, n, solver, **kwargs).x
    return abs(x.item() - exact)


def test_euler_is_first_order_and_heun_second_order():
    euler_ratio = _error("euler", 20) / _error("euler", 40)
    heun_ratio = _error("heun", 20) / _error("heun", 40)
    assert 1.8 < euler_ratio < 2.2
    assert 3.6 < heun_ratio < 4.4
    assert _error("heun", 20) < _error("euler", 20) / 20


def test_rk45_meets_its_tolerance():
    loose, tight = _error("rk45", 1, rtol=1e-3, atol=1e-3), _error("rk45", 1, rtol=1e-8, atol=1e-8)
    assert loose < 1e-2 and tight < 1e-6 and tight < loose


def test_forward_then_reverse_round_trip():
    x0 = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    # Heun is exact on fields that depend on t only: forward and reverse use the same two evaluations per step.
    field = lambda x, t: torch.full_like(x, math.sin(3 * t))  # noqa: E731
    there = integrate(field, x0, 0.0, 1.0, 7, "heun")
    assert torch.allclose(integrate(field, there.x, 1.0, 0.0, 7, "heun").x, x0, atol=1e-12, rtol=0)
    # On a curved field, RK45 retraces the path to its tolerance.
    there = integrate(_curved, x0, 0.0, 1.0, 1, "rk45", rtol=1e-9, atol=1e-9)
    back = integrate(_curved, there.x, 1.0, 0.0, 1, "rk45", rtol=1e-9, atol=1e-9)
    assert torch.allclose(back.x, x0, atol=1e-7)


@pytest.mark.parametrize("solver", ["euler", "heun", "rk45"])
def test_trajectory(solver):
    result = integrate(lambda x, t: torch.ones_like(x), torch.zeros(1, dtype=torch.float64), 1.0, 0.0, 4, solver,
                       return_trajectory=True)
    assert len(result.trajectory) == 5 and result.times[0] == 1.0 and result.times[-1] == 0.0
    assert [round(s.item(), 9) for s in result.trajectory] == [0.0, -0.25, -0.5, -0.75, -1.0]


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="solver"):
        integrate(lambda x, t: x, torch.zeros(1), 0, 1, 3, "dpm")
    with pytest.raises(ValueError, match="steps must be between 1 and"):
        integrate(lambda x, t: x, torch.zeros(1), 0, 1, 0)
