"""The two formulations of the one ODE, each one class that owns all of it: where the image and the mask sit in time,
the state the velocity net sees and its layout, the straight paths and their velocities, the training pair and times,
what the net predicts and the velocity (and clean ends) that follow from its output, and where segmentation and
synthesis start and end."""

from __future__ import annotations

import torch

from .flow import sample_t
from .noise import Generators, draw

PREDICTIONS = ("velocity", "data")
# Data prediction divides by the time left to an end; so close to it the division is capped (as JiT does).
MIN_TIME_LEFT = 0.05


class Formulation:
    """What a formulation answers; the pipeline and the training loop ask only these questions.

    Segmentation always integrates from `image_time` to `mask_time`, synthesis the other way; only the times, the
    state layout and the noise differ between formulations.
    """

    name: str
    image_time: float
    mask_time: float
    uses_noise: bool  # whether segmentation and synthesis draw Gaussian noise (seeded)
    prediction: str = "velocity"  # what the net outputs: the velocity itself, or the clean ends ("data")
    summary: str  # one sentence for people (model cards, the app's model panel)

    def state_channels(self, latent_channels: int) -> int:
        """Channels of the state (the velocity net's input and output) for a codec of `latent_channels`."""
        raise NotImplementedError

    def segmentation_start(self, z_image: torch.Tensor, generator: Generators = None) -> torch.Tensor:
        """The state at `image_time` for an encoded image."""
        raise NotImplementedError

    def synthesis_start(self, z_mask: torch.Tensor, generator: Generators = None) -> torch.Tensor:
        """The state at `mask_time` for an encoded (perturbed) anchor mask."""
        raise NotImplementedError

    def image_part(self, state: torch.Tensor) -> torch.Tensor:
        """The encoded image held by a state."""
        raise NotImplementedError

    def mask_part(self, state: torch.Tensor) -> torch.Tensor:
        """The encoded anchor mask held by a state."""
        raise NotImplementedError

    def training_pair(self, z_image: torch.Tensor, z_mask: torch.Tensor, t: torch.Tensor,
                      generator: Generators = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_t, target) for a batch of encoded images and masks at times `t` (shape (B,)): the target is what the
        net is trained to output (the velocity, or the clean ends with data prediction)."""
        raise NotImplementedError

    def velocity(self, output: torch.Tensor, state: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
        """The velocity at `state` and time `t` from the net's `output` (the output itself for velocity
        prediction)."""
        return output

    def clean_ends(self, output: torch.Tensor, state: torch.Tensor,
                   t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The net's estimate of both clean ends, (encoded image, encoded mask), from its `output` at `state` and
        times `t` ((B,)): what the extra training terms (cross-entropy on the anchors, perceptual, cycle,
        adversarial) score."""
        raise NotImplementedError

    def hold_image(self, velocity: torch.Tensor, start: torch.Tensor, z_image: torch.Tensor,
                   known: torch.Tensor) -> torch.Tensor:
        """`velocity` with the image held at `known` positions ((B, 1, h, w) bool) to `z_image`: there, the image
        channels move along the straight path from the synthesis `start` to `z_image`, so a synthesis that starts at
        `start` ends with exactly `z_image` there (a photo edit keeps what was not edited)."""
        raise NotImplementedError

    def time_from_image_end(self, distance: torch.Tensor) -> torch.Tensor:
        """The time at `distance` ∈ [0, 1] from the image end (0 = where one-step segmentation starts)."""
        return distance if self.image_time == 0.0 else 1.0 - distance

    def training_times(self, batch_size: int, distribution: str = "uniform", image_end_probability: float = 0.0,
                       generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
        """(B,) training times: distances from the image end drawn by `semflow.flow.sample_t` (exactly at the image
        end, where one-step segmentation starts, with `image_end_probability`), as times of this formulation."""
        return self.time_from_image_end(sample_t(batch_size, distribution, image_end_probability, generator, device))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SemFlowFormulation(Formulation):
    """The paper (Wang et al. 2024): x_t = t·z1 + (1−t)·z0 with the image at t=0 and the (perturbed) mask at t=1.

    The state is the encoded picture itself; the only randomness is the perturbation of Eq. 14, applied in pixel space
    before encoding.
    """

    name, image_time, mask_time, uses_noise = "semflow", 0.0, 1.0, False
    summary = ("SemFlow (the paper): one rectified-flow ODE between images (t=0) and masks drawn as anchor colours "
               "(t=1); segment by integrating image → mask, synthesize by integrating a perturbed mask → image")

    def state_channels(self, latent_channels: int) -> int:
        return latent_channels

    def segmentation_start(self, z_image: torch.Tensor, generator: Generators = None) -> torch.Tensor:
        return z_image

    def synthesis_start(self, z_mask: torch.Tensor, generator: Generators = None) -> torch.Tensor:
        return z_mask

    def image_part(self, state: torch.Tensor) -> torch.Tensor:
        return state

    def mask_part(self, state: torch.Tensor) -> torch.Tensor:
        return state

    def __init__(self, prediction: str = "velocity") -> None:
        if prediction != "velocity":
            raise ValueError(f"the semflow formulation predicts the velocity, not {prediction!r}")

    @staticmethod
    def path(z_image: torch.Tensor, z_mask: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t = t·z1 + (1−t)·z0 with z0 the image and z1 the mask; `t` has shape (B,)."""
        t = _per_sample(t, z_image)
        return t * z_mask + (1.0 - t) * z_image

    @staticmethod
    def path_velocity(z_image: torch.Tensor, z_mask: torch.Tensor) -> torch.Tensor:
        """v = z1 − z0: the constant velocity of the straight path from image to mask."""
        return z_mask - z_image

    def training_pair(self, z_image, z_mask, t, generator=None):
        return self.path(z_image, z_mask, t), self.path_velocity(z_image, z_mask)

    def clean_ends(self, output, state, t):
        t = _per_sample(t, state)
        return state - t * output, state + (1.0 - t) * output  # z0 = x_t − t·v, z1 = x_t + (1−t)·v

    def hold_image(self, velocity, start, z_image, known):
        return torch.where(known, start - z_image, velocity)  # x_t = t·M' + (1−t)·x: dx/dt = M' − x


class SymmetricFormulation(Formulation):
    """SymmFlow (Caetano et al. 2026): the state is (image, mask) channels; x_t = (1−t)·ξ_x + t·x and
    y_t = (1−t)·y + t·ξ_y, so t=0 holds (noise, mask) and t=1 holds (image, noise).

    Synthesis starts from (ξ_x, y) at t=0, segmentation from (x, ξ_y) at t=1. With ``prediction="velocity"`` (the
    paper) the net predicts both velocities (x − ξ_x, ξ_y − y); with ``prediction="data"`` it predicts the clean ends
    (x̂, ŷ) and the velocities follow from the path: v_x = (x̂ − x_t)/(1 − t), v_y = (y_t − ŷ)/t. A small net in pixel
    space learns the clean ends far more easily than velocities that carry the noise along (JiT, Li & He 2025).
    """

    name, image_time, mask_time, uses_noise = "symmetric", 1.0, 0.0, True
    summary = ("symmetric (SymmFlow): the state holds image and mask channels with Gaussian noise at the other end "
               "of each (t=0: noise and mask, t=1: image and noise); segment by integrating (image, noise) from t=1 "
               "to t=0, synthesize by integrating (noise, mask) from t=0 to t=1")

    def __init__(self, prediction: str = "velocity") -> None:
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
        self.prediction = prediction

    def state_channels(self, latent_channels: int) -> int:
        return 2 * latent_channels

    def segmentation_start(self, z_image: torch.Tensor, generator: Generators = None) -> torch.Tensor:
        return torch.cat([z_image, draw(z_image.shape, generator, like=z_image)], dim=1)  # (x, ξ_y)

    def synthesis_start(self, z_mask: torch.Tensor, generator: Generators = None) -> torch.Tensor:
        return torch.cat([draw(z_mask.shape, generator, like=z_mask), z_mask], dim=1)  # (ξ_x, y)

    def image_part(self, state: torch.Tensor) -> torch.Tensor:
        return state[:, : state.shape[1] // 2]

    def mask_part(self, state: torch.Tensor) -> torch.Tensor:
        return state[:, state.shape[1] // 2 :]

    @staticmethod
    def image_path(z_image: torch.Tensor, noise_image: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t = (1−t)·ξ_x + t·x: the image channels, clean at t=1; `t` has shape (B,)."""
        t = _per_sample(t, z_image)
        return (1.0 - t) * noise_image + t * z_image

    @staticmethod
    def mask_path(z_mask: torch.Tensor, noise_mask: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """y_t = (1−t)·y + t·ξ_y: the mask channels, clean at t=0."""
        t = _per_sample(t, z_mask)
        return (1.0 - t) * z_mask + t * noise_mask

    @staticmethod
    def image_velocity(z_image: torch.Tensor, noise_image: torch.Tensor) -> torch.Tensor:
        """dx/dt = x − ξ_x."""
        return z_image - noise_image

    @staticmethod
    def mask_velocity(z_mask: torch.Tensor, noise_mask: torch.Tensor) -> torch.Tensor:
        """dy/dt = ξ_y − y."""
        return noise_mask - z_mask

    def training_pair(self, z_image, z_mask, t, generator=None):
        noise_image = draw(z_image.shape, generator, like=z_image)
        noise_mask = draw(z_mask.shape, generator, like=z_mask)
        state = torch.cat([self.image_path(z_image, noise_image, t), self.mask_path(z_mask, noise_mask, t)], dim=1)
        if self.prediction == "data":
            return state, torch.cat([z_image, z_mask], dim=1)
        return state, torch.cat([self.image_velocity(z_image, noise_image),
                                 self.mask_velocity(z_mask, noise_mask)], dim=1)

    def hold_image(self, velocity, start, z_image, known):
        v_x = torch.where(known, self.image_velocity(z_image, self.image_part(start)), self.image_part(velocity))
        return torch.cat([v_x, self.mask_part(velocity)], dim=1)  # the mask channels move as the net says

    def clean_ends(self, output, state, t):
        if self.prediction == "data":
            return self.image_part(output), self.mask_part(output)
        t = _per_sample(t, state)
        v_x, v_y = self.image_part(output), self.mask_part(output)
        # x = x_t + (1−t)·v_x from x_t = (1−t)·ξ_x + t·x; y = y_t − t·v_y from y_t = (1−t)·y + t·ξ_y
        return self.image_part(state) + (1.0 - t) * v_x, self.mask_part(state) - t * v_y

    def velocity(self, output: torch.Tensor, state: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
        if self.prediction == "velocity":
            return output
        t = _per_sample(t, state)
        x_hat, y_hat = self.image_part(output), self.mask_part(output)
        x_t, y_t = self.image_part(state), self.mask_part(state)
        v_x = (x_hat - x_t) / (1.0 - t).clamp_min(MIN_TIME_LEFT)  # from x_t = (1−t)·ξ_x + t·x
        v_y = (y_t - y_hat) / t.clamp_min(MIN_TIME_LEFT)  # from y_t = (1−t)·y + t·ξ_y
        return torch.cat([v_x, v_y], dim=1)

    def __repr__(self) -> str:
        return f"SymmetricFormulation(prediction={self.prediction!r})"


def _per_sample(t: float | torch.Tensor, state: torch.Tensor) -> torch.Tensor:
    """`t` (a float or (B,)) shaped to broadcast over a (B, C, h, w) state."""
    return torch.as_tensor(t, dtype=state.dtype, device=state.device).reshape(-1, *([1] * (state.dim() - 1)))


_FORMULATIONS = {"semflow": SemFlowFormulation, "symmetric": SymmetricFormulation}
FORMULATIONS = tuple(_FORMULATIONS)


def get_formulation(name: str, prediction: str = "velocity") -> Formulation:
    """The formulation called `name` (``"semflow"`` or ``"symmetric"``) with the net predicting `prediction`
    (``"velocity"``, or ``"data"`` for the symmetric formulation)."""
    if name not in _FORMULATIONS:
        raise ValueError(f"formulation must be one of {FORMULATIONS}, got {name!r}")
    return _FORMULATIONS[name](prediction)
