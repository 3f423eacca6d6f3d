"""How large the generated objects' edges are, against real renders, and the mode-seeking
ratio of each view on the same samples.

    python experiments/edge_magnitude.py runs/a/model runs/b/model --out edges.json
    python experiments/edge_magnitude.py --quick --out /tmp/edges.json   # the default model

The mode-seeking terms (``--set mode_seeking_view=...`` in ``train_world_models.py``) reward
two latents of one class for giving different images. A generator can pay that in more
than one currency: the pixel view in background colour, the edge views in contrast (an
object drawn with stronger edges differs more from another in every edge it has). This
script measures the second: the mean absolute :func:`~jaxaware.train.trainer.edge_view`
of ``--per-class`` samples per class of each model, and of as many real renders, and their
ratio (1: the model draws edges as strong as the world does). Beside it, each model's
mode-seeking ratio in every view, with the samples paired as training pairs them (the
second half of the batch repeats the first half's classes). Writes a JSON and a bar
figure of the edge ratio per model (``--out``, with ``.png`` for ``.json``).
"""

from __future__ import annotations


import numpy as np

QUICK_PER_CLASS = 2


def measure(models: dict, per_class: int, seed: int = 0, real_seed: int = 5) -> dict:
    """``models``: name -> loaded jaxaware model. Returns the JSON record's numbers."""
    import jax
    import jax.numpy as jnp

    from jaxaware.errors import JaxawareError
    from jaxaware.generate import generate
    from jaxaware.toyworld import WORLD, render
    from jaxaware.train.trainer import MODE_SEEKING_VIEWS, edge_view, mode_seeking_ratio

    if per_class < 2 or per_class % 2:
        raise JaxawareError(f"--per-class must be an even number >= 2 (the samples are "
                            f"paired); got {per_class}")
    classes = np.tile(np.arange(WORLD.num_classes), per_class)  # halves: the same classes
    real, _ = render(classes, seed=real_seed)
    real_edges = float(jnp.mean(jnp.abs(edge_view(jnp.asarray(real)))))
    out = {"per_class": per_class, "seed": seed, "real_seed": real_seed,
           "real_mean_abs_edge": real_edges, "models": {}}
    for name, model in models.items():
        z = jax.random.normal(jax.random.PRNGKey(seed), (len(classes), model.config.z_dim))
        images = generate(model, z, classes, 1.0)
        edges = float(jnp.mean(jnp.abs(edge_view(images))))
        out["models"][name] = {
            "mean_abs_edge": edges,
            "edge_over_real": edges / real_edges,
            "mode_seeking_ratio": {v: float(mode_seeking_ratio(images, z, v))
                                   for v in MODE_SEEKING_VIEWS},
        }
    return out


def plot(record: dict, path: str) -> None:
    from jaxaware.outputs import pyplot, save_figure, weights_label as label

    plt = pyplot()

    names = list(record["models"])
    ratios = [record["models"][n]["edge_over_real"] for n in names]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(names) + 1.5), 3.2))
    ax.bar(range(len(names)), ratios, color="#4c72b0")
    for i, r in enumerate(ratios):
        ax.text(i, r + 0.01, f"{r:.3f}", ha="center", va="bottom", fontsize=8)
    ax.axhline(1.0, color="k", ls="--", lw=1)
    ax.set_xticks(range(len(names)), [label(n) for n in names], rotation=20, ha="right",
                  fontsize=8)
    ax.set_ylabel("mean |edge| / real renders'")
    ax.set_title(f"Edge magnitude of generated objects ({record['per_class']} per class)",
                 fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def report(record: dict) -> None:
    print(f"real renders: mean |edge| {record['real_mean_abs_edge']:.4f}")
    views = list(next(iter(record["models"].values()))["mode_seeking_ratio"])
    print(f"{'model':<40} {'|edge|':>7} {'/ real':>7}  " + "  ".join(f"{v:>14}" for v in views))
    for name, r in record["models"].items():
        print(f"{name:<40} {r['mean_abs_edge']:>7.4f} {r['edge_over_real']:>7.3f}  "
              + "  ".join(f"{r['mode_seeking_ratio'][v]:>14.4f}" for v in views))


def main(argv=None) -> dict:
    from jaxaware.outputs import model_report_main

    return model_report_main(
        argv, __doc__.split("\n\n")[0],
        lambda models, per_class, args: measure(models, per_class, args.seed, args.real_seed),
        report, plot, per_class=64, quick_per_class=QUICK_PER_CLASS,
        add_arguments=lambda p: p.add_argument("--real-seed", type=int, default=5,
                                               help="world seed of the real renders"))


if __name__ == "__main__":
    main()
