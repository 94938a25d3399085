"""Per-example data augmentation whose parameters become regression targets.

Metz et al. (2019, sec. 4.2) append the parameters of the augmentation (shift,
rotation, noise level) to the targets of the meta-objective, so that features
that encode them are rewarded too. Everything here is pure JAX (jit / vmap).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from metaunsup.errors import UserError
from metaunsup.types import Array, PRNGKey

NUM_AUG_TARGETS = 4  # dx, dy, angle, noise: each scaled to [-1, 1] (noise [0, 1])


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random augmentation, per example.

    Attributes:
      max_shift: largest shift in pixels along each axis (uniform in +-).
      max_rotation: largest rotation in radians (uniform in +-).
      max_noise: largest std of additive Gaussian pixel noise (uniform in [0, max]).
      aux_weight: scale of the augmentation targets relative to the class
        targets in the meta-objective (0 disables them).
    """

    max_shift: float = 1.5
    max_rotation: float = 0.25
    max_noise: float = 0.1
    aux_weight: float = 0.5

    def __post_init__(self):
        for f in ("max_shift", "max_rotation", "max_noise", "aux_weight"):
            if getattr(self, f) < 0:
                raise UserError(f"augmentation {f} must be >= 0, got {getattr(self, f)}")


def sample_aug_params(key: PRNGKey, n: int, config: AugmentConfig) -> Array:
    """Draws [n, 4] normalised parameters (dx, dy, angle in [-1, 1]; noise in [0, 1])."""
    k1, k2 = jax.random.split(key)
    geo = jax.random.uniform(k1, (n, 3), minval=-1.0, maxval=1.0)
    noise = jax.random.uniform(k2, (n, 1))
    return jnp.concatenate([geo, noise], axis=1)


def _warp_one(image: Array, params: Array, config: AugmentConfig) -> Array:
    """Shifts and rotates one [H, W] image about its centre (bilinear, zero fill)."""
    h, w = image.shape
    dx = params[0] * config.max_shift
    dy = params[1] * config.max_shift
    angle = params[2] * config.max_rotation
    rows, cols = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32),
                              jnp.arange(w, dtype=jnp.float32), indexing="ij")
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    # Output pixel p samples the input at R(-angle) (p - c - shift) + c, i.e. the
    # content is rotated by +angle and then moved by (dy, dx).
    yr, xr = rows - cy - dy, cols - cx - dx
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    src_y = cos * yr + sin * xr + cy
    src_x = -sin * yr + cos * xr + cx
    return jax.scipy.ndimage.map_coordinates(image, [src_y, src_x], order=1, mode="constant")


def augment(key: PRNGKey, x: Array, image_shape: tuple[int, int],
            config: AugmentConfig, *, geometric: Array | float = 1.0) -> tuple[Array, Array]:
    """Augments a batch of flattened images.

    Args:
      key: PRNG key.
      x: [B, H*W] images in [0, 1].
      image_shape: (H, W).
      config: augmentation ranges.
      geometric: 1 for images; 0 for data that are not images (the shift and
        rotation parameters, and their targets, are then 0: the warp is the
        identity and only pixel noise applies). May be traced.

    Returns:
      ``(x_aug, targets)``: [B, H*W] augmented images (clipped to [0, 1]) and
      [B, 4] normalised augmentation parameters.
    """
    k_params, k_noise = jax.random.split(key)
    params = sample_aug_params(k_params, x.shape[0], config)
    params = params * jnp.stack([geometric, geometric, geometric, 1.0]).astype(params.dtype)
    images = x.reshape((x.shape[0],) + tuple(image_shape))
    warped = jax.vmap(lambda im, p: _warp_one(im, p, config))(images, params)
    warped = warped.reshape(x.shape)
    noise = jax.random.normal(k_noise, x.shape) * (params[:, 3:4] * config.max_noise)
    return jnp.clip(warped + noise, 0.0, 1.0), params
