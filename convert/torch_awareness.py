"""Straightforward PyTorch channel awareness for BigGAN-deep: the benchmark baseline.

This is written the way a PyTorch user would write it against ``pytorch_pretrained_biggan``
(no batching across classes, no precomputed spectral norms): for each class, build the
condition vectors of all latents, call every CCBN's ``scale``/``offset`` modules and reduce.

For a CCBN with gain ``gamma = 1 + scale(c)`` and bias ``beta = offset(c)`` the channel's
output crosses zero at ``t = -beta / gamma`` (in normalised units). Per class ``k`` and
channel ``j``, over the ``N`` latents ``z_n`` (shared by all classes):

* category awareness ``-mean_n t``
* latent awareness ``var_n t`` (population variance)
* flip fraction ``mean_n [gamma <= 0]``
"""

from __future__ import annotations

import statistics
import time
from typing import NamedTuple, Sequence

import numpy as np
import torch
from pytorch_pretrained_biggan import BigGAN, truncated_noise_sample

from convert.reference import conditional_bn_sites

__all__ = ["TorchAwareness", "torch_awareness", "torch_images_per_second"]


class TorchAwareness(NamedTuple):
    category: np.ndarray  # [K, total_channels], -mean_n t (model dtype: float32 normally)
    latent: np.ndarray  # [K, total_channels], var_n t (ddof 0)
    flip: np.ndarray  # [K, total_channels], fraction of latents with gamma <= 0
    site_names: list[str]  # conditional BN module names, forward order
    site_channels: list[int]  # channels per site (columns are concatenated in this order)


def torch_awareness(
    model: BigGAN,
    classes: Sequence[int],
    num_latents: int,
    truncation: float,
    seed: int | None,
    *,
    progress: bool = False,
) -> TorchAwareness:
    """Channel awareness of every conditional BN for each class in ``classes``.

    ``z = truncated_noise_sample(batch_size=num_latents, dim_z=z_dim, truncation, seed)``
    (the same latents for every class). Rows follow ``classes``; columns are the channels
    of all CCBN sites concatenated in forward order. Runs in eval mode under no_grad (the
    model's mode is restored afterwards), in the model's dtype (``copy.deepcopy(model).double()``
    gives a float64 reference).
    """
    config = model.config
    classes = [int(k) for k in classes]
    sites = conditional_bn_sites(model)
    dtype = model.embeddings.weight.dtype  # float32, or float64 after model.double()
    z = truncated_noise_sample(
        batch_size=num_latents, dim_z=config.z_dim, truncation=truncation, seed=seed
    )
    z = torch.from_numpy(z).to(dtype)

    iterator = classes
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(classes, desc="torch awareness", unit="class")

    category, latent, flip = [], [], []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for k in iterator:
                label = torch.zeros(num_latents, config.num_classes, dtype=dtype)
                label[:, k] = 1.0
                c = torch.cat([z, model.embeddings(label)], dim=1)
                cat_k, lat_k, flip_k = [], [], []
                for _, bn in sites:
                    gamma = 1 + bn.scale(c)
                    beta = bn.offset(c)
                    t = -beta / gamma
                    cat_k.append(-t.mean(0))
                    lat_k.append(t.var(0, unbiased=False))
                    flip_k.append((gamma <= 0).float().mean(0))
                category.append(torch.cat(cat_k))
                latent.append(torch.cat(lat_k))
                flip.append(torch.cat(flip_k))
    finally:
        model.train(was_training)

    return TorchAwareness(
        category=torch.stack(category).numpy(),
        latent=torch.stack(latent).numpy(),
        flip=torch.stack(flip).numpy(),
        site_names=[name for name, _ in sites],
        site_channels=[bn.num_features for _, bn in sites],
    )


def torch_images_per_second(
    model: BigGAN,
    batch: int = 8,
    truncation: float = 0.4,
    repeats: int = 5,
    *,
    warmup: int = 1,
    seed: int = 0,
) -> dict:
    """Time ``model(z, one_hot, truncation)`` on random inputs (eval mode, no_grad).

    ``warmup`` untimed calls, then ``repeats`` timed calls of one batch each; the torch
    thread count is left at its default. Returns ``{"best", "median"}`` in images/s plus
    ``"times_s"`` (per call), ``"batch"``, ``"repeats"``, ``"threads"``, ``"resolution"``.
    """
    if repeats < 1 or batch < 1:
        raise ValueError("batch and repeats must be >= 1")
    config = model.config
    rng = np.random.RandomState(seed)
    z = torch.from_numpy(truncated_noise_sample(batch, config.z_dim, truncation, seed))
    label = torch.zeros(batch, config.num_classes)
    label[torch.arange(batch), torch.from_numpy(rng.randint(0, config.num_classes, batch))] = 1.0
    was_training = model.training
    model.eval()
    times = []
    try:
        with torch.no_grad():
            for _ in range(warmup):
                out = model(z, label, truncation)
            for _ in range(repeats):
                t0 = time.perf_counter()
                out = model(z, label, truncation)
                times.append(time.perf_counter() - t0)
    finally:
        model.train(was_training)
    return {
        "best": batch / min(times),
        "median": batch / statistics.median(times),
        "times_s": times,
        "batch": batch,
        "repeats": repeats,
        "threads": torch.get_num_threads(),
        "resolution": int(out.shape[-1]),
    }
