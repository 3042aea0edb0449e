"""Hand-crafted product-image features: colour and texture statistics, computed locally.

No pretrained image model can be installed offline here, so an image is described by what a
shopper sees first: its colours (hue/saturation/value histograms, CIE Lab moments) and its
pattern (gradient energy and orientation, oriented band energy of the spectrum as a cheap Gabor
bank, and a uniform local-binary-pattern histogram, Ojala et al., TPAMI 2002). The vector is
small (`N_FEATURES`), deterministic and needs only Pillow and numpy.

Shops that run their own image model pass its output as precomputed vectors instead (see
`shoprec.features.fusion`, attribute `image_vector`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

SIZE = 64  # images are resized to SIZE x SIZE before features are computed
N_HUE, N_SAT, N_VAL = 12, 4, 4
N_ORIENT, N_BANDS = 4, 2
N_LBP = 10
N_FEATURES = N_HUE + N_SAT + N_VAL + 6 + 4 + N_ORIENT * N_BANDS + N_LBP
"""Length of the vector returned by `image_features` (48)."""


def load_image(image: Any, root: str | Path | None = None) -> np.ndarray | None:
    """Any supported image value as an RGB uint8 array of shape (SIZE, SIZE, 3), or None.

    Accepts a numpy array (H, W, 3) or (H, W), a PIL image, encoded bytes, or a file path
    (relative paths are resolved against `root`). Missing files and empty values give None.
    """
    from PIL import Image

    if image is None or (isinstance(image, float) and np.isnan(image)):
        return None
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        pil = Image.fromarray(np.clip(arr[:, :, :3], 0, 255).astype(np.uint8))
    elif isinstance(image, Image.Image):
        pil = image
    elif isinstance(image, bytes | bytearray):
        pil = Image.open(io.BytesIO(image))
    elif isinstance(image, str | Path):
        if not str(image):
            return None
        path = Path(image)
        if not path.is_absolute() and root is not None:
            path = Path(root) / path
        if not path.is_file():
            return None
        pil = Image.open(path)
    else:
        raise TypeError(f"load_image: unsupported image value of type {type(image).__name__}")
    pil = pil.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    return np.asarray(pil, dtype=np.uint8)


def _rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) floats in [0, 1] -> HSV in [0, 1]."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mx, mn = rgb.max(axis=-1), rgb.min(axis=-1)
    delta = mx - mn
    safe = np.where(delta > 0, delta, 1.0)
    h = np.where(
        mx == r, ((g - b) / safe) % 6, np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4)
    )
    h = np.where(delta > 0, h / 6.0, 0.0)
    s = np.where(mx > 0, delta / np.where(mx > 0, mx, 1.0), 0.0)
    return np.stack([h, s, mx], axis=-1)


def _rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) sRGB in [0, 1] -> CIE Lab (D65), L in [0, 100]."""
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1
    )


def _orientation_energy(gray: np.ndarray) -> np.ndarray:
    """Share of spectral energy per (orientation, radial band): a Gabor bank in one FFT."""
    g = gray - gray.mean()
    power = np.abs(np.fft.fftshift(np.fft.fft2(g))) ** 2
    n = g.shape[0]
    fy, fx = np.mgrid[-(n // 2) : n - n // 2, -(n // 2) : n - n // 2]
    radius = np.hypot(fx, fy) / (n / 2)
    # orientation of the *pattern* (stripes along x have energy along the fy axis)
    angle = np.mod(np.arctan2(fy, fx), np.pi)
    o_bin = np.floor((angle + np.pi / (2 * N_ORIENT)) / (np.pi / N_ORIENT)).astype(int) % N_ORIENT
    edges = np.array([0.05, 0.3, 1.0])
    out = np.zeros((N_ORIENT, N_BANDS))
    for b in range(N_BANDS):
        ring = (radius > edges[b]) & (radius <= edges[b + 1])
        out[:, b] = np.bincount(o_bin[ring], weights=power[ring], minlength=N_ORIENT)
    total = out.sum()
    return (out / total).ravel() if total > 0 else out.ravel()


def _lbp_histogram(gray: np.ndarray) -> np.ndarray:
    """Uniform 8-neighbour LBP histogram: bins 0..8 = number of brighter neighbours of a
    uniform pattern, bin 9 = non-uniform patterns."""
    c = gray[1:-1, 1:-1]
    offsets = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]
    bits = np.stack(
        [
            gray[1 + dy : gray.shape[0] - 1 + dy, 1 + dx : gray.shape[1] - 1 + dx] >= c + 2.0
            for dy, dx in offsets
        ]
    )
    ones = bits.sum(axis=0)
    transitions = (bits != np.roll(bits, 1, axis=0)).sum(axis=0)
    code = np.where(transitions <= 2, ones, 9)
    hist = np.bincount(code.ravel(), minlength=N_LBP).astype(np.float64)
    return hist / hist.sum()


def image_features(image: np.ndarray) -> np.ndarray:
    """Colour and texture features of one RGB image.

    Parameters
    ----------
    image : np.ndarray, shape (H, W, 3), uint8
        Resized internally to (SIZE, SIZE).

    Returns
    -------
    np.ndarray, shape (N_FEATURES,), float32: hue histogram weighted by saturation x value
    (12), saturation (4) and value (4) histograms, Lab mean and std (6), gradient statistics
    (mean magnitude, std, horizontal share, edge density: 4), orientation x band spectral
    energy (8), uniform LBP histogram (10).
    """
    if image.shape[:2] != (SIZE, SIZE):
        image = load_image(image)
    rgb = image[..., :3].astype(np.float64) / 255.0
    hsv = _rgb_to_hsv(rgb)
    weight = hsv[..., 1] * hsv[..., 2]
    hue = np.bincount(
        np.minimum((hsv[..., 0] * N_HUE).astype(int), N_HUE - 1).ravel(),
        weights=weight.ravel(),
        minlength=N_HUE,
    )
    hue = hue / max(hue.sum(), 1e-9) * min(1.0, float(weight.mean()) * 4)  # greys have little hue
    sat = np.histogram(hsv[..., 1], bins=N_SAT, range=(0, 1))[0] / hsv[..., 1].size
    val = np.histogram(hsv[..., 2], bins=N_VAL, range=(0, 1))[0] / hsv[..., 2].size
    lab = _rgb_to_lab(rgb).reshape(-1, 3)
    lab_stats = np.concatenate(
        [lab.mean(0) / np.array([100, 128, 128]), lab.std(0) / np.array([50, 64, 64])]
    )

    gray = rgb @ np.array([0.299, 0.587, 0.114]) * 255.0
    gx = np.diff(gray, axis=1)[:-1, :]
    gy = np.diff(gray, axis=0)[:, :-1]
    mag = np.hypot(gx, gy)
    e_x, e_y = float((gx**2).sum()), float((gy**2).sum())
    grad = np.array(
        [mag.mean() / 64.0, mag.std() / 64.0, e_x / max(e_x + e_y, 1e-9), (mag > 30).mean()]
    )
    feats = np.concatenate(
        [hue, sat, val, lab_stats, grad, _orientation_energy(gray), _lbp_histogram(gray)]
    )
    return feats.astype(np.float32)


def batch_image_features(
    images: Sequence[Any], root: str | Path | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Features of many images (any value `load_image` accepts).

    Returns
    -------
    feats : np.ndarray, shape (N, N_FEATURES), float32 (zero rows where there is no image)
    present : np.ndarray, shape (N,), bool
    """
    feats = np.zeros((len(images), N_FEATURES), dtype=np.float32)
    present = np.zeros(len(images), dtype=bool)
    for i, value in enumerate(images):
        arr = load_image(value, root)
        if arr is not None:
            feats[i] = image_features(arr)
            present[i] = True
    return feats, present
