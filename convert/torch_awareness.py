"""Straightforward PyTorch channel awareness and image timing: the benchmark baselines.

This is written the way a PyTorch user would write it against ``pytorch_pretrained_biggan``
(BigGAN-deep) or BigGAN-PyTorch's generator (the original BigGAN, through our reference
module :mod:`convert.biggan_pytorch_reference`), with no batching across classes and no
precomputed spectral norms: for each class, build the condition vectors of all latents,
call every CCBN's gain/bias modules and reduce.

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

__all__ = ["TorchAwareness", "torch_awareness", "torch_awareness_biggan",
           "torch_images_per_second", "torch_images_per_second_biggan"]


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


def torch_awareness_biggan(G, classes: Sequence[int], num_latents: int, truncation: float,
                           seed: int, *, progress: bool = False) -> TorchAwareness:
    """Channel awareness of every CCBN of a BigGAN-PyTorch generator (reference module).

    Latents ``truncation * N(0, 1)`` from ``np.random.RandomState(seed)`` (jaxaware's draw
    for this family), the same for every class; per class, each block's condition
    ``cat([shared(y), z_chunk])`` (or ``shared(y)`` / the class index without ``hier`` /
    ``G_shared``) goes through every CCBN's ``gain``/``bias`` modules (spectral norm
    recomputed on each call, as the module does).
    """
    from convert.biggan_pytorch_reference import class_condition

    classes = [int(k) for k in classes]
    z = np.random.RandomState(seed).standard_normal((num_latents, G.dim_z)).astype(np.float32)
    z = torch.from_numpy(z * np.float32(truncation))
    chunks = torch.split(z, G.z_chunk_size, 1) if G.hier else None
    iterator = classes
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(classes, desc="torch awareness", unit="class")
    category, latent, flip = [], [], []
    G.eval()
    with torch.no_grad():
        for k in iterator:
            y = class_condition(G, np.full(num_latents, k))
            cat_k, lat_k, flip_k = [], [], []
            for i, blocklist in enumerate(G.blocks):
                cond = torch.cat([y, chunks[i + 1]], 1) if chunks is not None else y
                for bn in (blocklist[0].bn1, blocklist[0].bn2):
                    gamma, beta = bn.affine(cond)
                    t = -beta / gamma
                    cat_k.append(-t.mean(0))
                    lat_k.append(t.var(0, unbiased=False))
                    flip_k.append((gamma <= 0).float().mean(0))
            category.append(torch.cat(cat_k))
            latent.append(torch.cat(lat_k))
            flip.append(torch.cat(flip_k))
    names = [f"block{i}.bn{j}" for i in range(len(G.blocks)) for j in (1, 2)]
    widths = [bn.output_size for b in G.blocks for bn in (b[0].bn1, b[0].bn2)]
    return TorchAwareness(torch.stack(category).numpy(), torch.stack(latent).numpy(),
                          torch.stack(flip).numpy(), names, widths)


def torch_images_per_second_biggan(G, batch: int = 8, repeats: int = 5, *, warmup: int = 1,
                                   seed: int = 0) -> dict:
    """Time ``G(z, G.shared(y))`` of a BigGAN-PyTorch generator (eval, no_grad); same
    fields as :func:`torch_images_per_second`."""
    from convert.biggan_pytorch_reference import class_condition

    rng = np.random.RandomState(seed)
    z = torch.from_numpy(rng.standard_normal((batch, G.dim_z)).astype(np.float32))
    y = class_condition(G, rng.randint(0, G.n_classes, batch))
    G.eval()
    times = []
    with torch.no_grad():
        for _ in range(warmup):
            out = G(z, y)
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = G(z, y)
            times.append(time.perf_counter() - t0)
    return {"best": batch / min(times), "median": batch / statistics.median(times),
            "times_s": times, "batch": batch, "repeats": repeats,
            "threads": torch.get_num_threads(), "resolution": int(out.shape[-1])}


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
