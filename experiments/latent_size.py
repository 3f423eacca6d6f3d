"""Does a world model's first latent coordinate set the size of its objects?

    python experiments/latent_size.py toyworld-biggan runs/extent/model --out size.json
    python experiments/latent_size.py --quick --out /tmp/size.json   # the default model

The extent term of training (``--set extent=W``, :mod:`jaxaware.train.extent`) asks the
generator to draw a sample of class ``y`` with latent ``z`` at the real area of class ``y``
at the quantile of ``z_0``, as a regressor trained on real renders reads the area. This
script checks that with the evaluation's own instrument instead, the reference segmenter:
for ``--per-class`` samples of every class (latent seed ``--seed``, truncation 1) it reads
each object's area from the segmenter's part map and reports, per class,

* Spearman's rank correlation of ``z_0`` with the area (1: the first coordinate orders the
  sizes exactly; about 0 for a model whose latent does not carry size there);
* the term's error measured by the segmenter, ``mean(((area - Q_y(F(z_0))) / sd_y) ** 2)``
  (the real quantiles and spreads of :func:`~jaxaware.train.extent.area_quantiles`): about
  the training log's ``extent_err`` if the regressor reads the samples as the segmenter
  does, much more if the generator has learned images the regressor misreads.

With ``--regressor`` the term's regressor reads the same samples as well, and both
instruments are scored against the ground truth of real renders: if the generator has
learned images the regressor misreads, the regressor's error is small where the
segmenter's is not. Writes a JSON and a figure (``--out``, ``.png`` beside it): the
correlation per class and model, and each model's areas against ``F(z_0)``.
"""

from __future__ import annotations


import numpy as np

QUICK_PER_CLASS = 4


def size_agreement(z0, classes, areas, quantiles, spreads, law: str) -> list[dict]:
    """Per class present in ``classes``: ``spearman`` (of ``z0`` with ``areas``) and
    ``error`` (the extent term's error of ``areas`` against the class quantiles)."""
    import jax.numpy as jnp
    from scipy import stats

    from jaxaware.train.extent import extent_error

    z0, classes, areas = (np.asarray(a) for a in (z0, classes, areas))
    rows = []
    for k in np.unique(classes):
        m = classes == k
        rho = stats.spearmanr(z0[m], areas[m]).statistic if m.sum() >= 3 else float("nan")
        err = extent_error(jnp.asarray(areas[m], jnp.float32), jnp.asarray(z0[m]),
                           jnp.asarray(classes[m]), jnp.asarray(quantiles),
                           jnp.asarray(spreads), law)
        rows.append({"class": int(k), "n": int(m.sum()), "spearman": float(rho),
                     "error": float(err)})
    return rows


def instrument_error(truth, read, classes, spreads) -> float:
    """Root mean square of ``(read - truth) / sd_class``: how far an instrument's areas
    are from the truth, in units of the class's real spread."""
    truth, read, classes = (np.asarray(a) for a in (truth, read, classes))
    return float(np.sqrt(np.mean(((read - truth) / np.asarray(spreads)[classes]) ** 2)))


def measure(models: dict, per_class: int, seed: int = 0, regressor: bool = False,
            real_seed: int = 21_000) -> dict:
    """``models``: name -> loaded jaxaware model. Returns the JSON record's numbers. With
    ``regressor`` the extent term's own regressor reads the same samples too (trained
    first: minutes), and both instruments are scored on ``per_class`` real renders of
    world ``real_seed`` against their ground-truth areas."""
    from jaxaware.errors import JaxawareError
    from jaxaware.generate import sample
    from jaxaware.toyworld import WORLD, load_segmenter
    from jaxaware.toyworld.diversity import object_factors
    from jaxaware.train.extent import area_quantiles, latent_cdf

    if per_class < 3:
        raise JaxawareError(f"--per-class must be >= 3 (a rank correlation per class); got "
                            f"{per_class}")
    segmenter = load_segmenter()
    out = {"per_class": per_class, "seed": seed, "models": {}}
    readers = {}
    if regressor:
        from jaxaware.toyworld import balanced_classes, render
        from jaxaware.train.extent import extent_regressor

        resolutions = sorted({m.config.resolution for m in models.values()})
        out["instruments_on_real_renders"] = {}
        for res in resolutions:
            apply, params, record = extent_regressor(res, progress=True)
            readers[res] = (apply, params)
            classes = balanced_classes(per_class * WORLD.num_classes, seed=real_seed)
            real, maps = render(classes, seed=real_seed, resolution=res)
            truth = object_factors(real, maps)["area"]
            _, spreads = area_quantiles(res)
            seg = object_factors(real, segmenter.predict(real))["area"]
            reg = np.asarray(apply(params, real, classes))
            out["instruments_on_real_renders"][str(res)] = {
                "real_seed": real_seed, "regressor_record": record,
                "segmenter_rms_in_class_sd": instrument_error(truth, seg, classes, spreads),
                "regressor_rms_in_class_sd": instrument_error(truth, reg, classes, spreads)}
    for name, model in models.items():
        if list(model.class_names) != list(WORLD.class_names):
            raise JaxawareError(f"{name} is not a toy-world model (its classes are not the "
                                f"world's 16)")
        quantiles, spreads = area_quantiles(model.config.resolution)
        law = model.family.latent_law
        images, labels = sample(model, list(range(WORLD.num_classes)), 1.0, seed, per_class)
        z = model.family.sample_latents(per_class, model.config, 1.0, seed)
        z0 = np.tile(np.asarray(z)[:, 0], WORLD.num_classes)  # image i: latent row i % n
        areas = object_factors(images, segmenter.predict(images))["area"]
        rows = size_agreement(z0, labels, areas, quantiles, spreads, law)
        for r in rows:
            r["name"] = WORLD.class_names[r["class"]]
        entry = {}
        if regressor:
            apply, params = readers[model.config.resolution]
            read = np.asarray(apply(params, images, labels))
            for r, again in zip(rows, size_agreement(z0, labels, read, quantiles, spreads,
                                                     law)):
                r["spearman_regressor"], r["error_regressor"] = again["spearman"], again["error"]
            entry = {"error_regressor_mean": float(np.mean([r["error_regressor"]
                                                            for r in rows])),
                     "segmenter_vs_regressor_rms_in_class_sd": instrument_error(
                         areas, read, labels, spreads)}
        out["models"][name] = {
            **entry,
            "classes": rows,
            "spearman_mean": float(np.nanmean([r["spearman"] for r in rows])),
            "spearman_min": float(np.nanmin([r["spearman"] for r in rows])),
            "error_mean": float(np.mean([r["error"] for r in rows])),
            "points": {"quantile": np.asarray(latent_cdf(z0, law)).round(4).tolist(),
                       "standardized_area": ((areas - quantiles[labels, 50])
                                             / spreads[labels]).round(4).tolist()},
        }
    return out


def plot(record: dict, path: str) -> None:
    from jaxaware.outputs import pyplot, save_figure, weights_label as label

    plt = pyplot()

    names = list(record["models"])
    fig = plt.figure(figsize=(max(8.0, 3.2 * len(names)), 6.4))
    top = fig.add_subplot(2, 1, 1)
    classes = [r["name"] for r in record["models"][names[0]]["classes"]]
    width = 0.8 / len(names)
    for i, n in enumerate(names):
        rho = [r["spearman"] for r in record["models"][n]["classes"]]
        top.bar(np.arange(len(classes)) + (i - (len(names) - 1) / 2) * width, rho, width,
                label=f"{label(n)} (mean {record['models'][n]['spearman_mean']:.2f})")
    top.axhline(0.0, color="k", lw=0.8)
    top.set_xticks(range(len(classes)), classes, rotation=30, ha="right", fontsize=8)
    top.set_ylabel("Spearman (z_0, area)")
    top.set_ylim(-1, 1)
    top.legend(fontsize=8, loc="lower right")
    top.set_title(f"Does z_0 set the object's area? (reference segmenter, "
                  f"{record['per_class']} samples per class)", fontsize=9)
    for i, n in enumerate(names):
        ax = fig.add_subplot(2, len(names), len(names) + i + 1)
        pts = record["models"][n]["points"]
        ax.scatter(pts["quantile"], pts["standardized_area"], s=4, alpha=0.4)
        ax.set_xlabel("F(z_0)", fontsize=8)
        ax.set_ylabel("(area - class median) / class sd", fontsize=7)
        ax.set_title(f"{label(n)}: term error {record['models'][n]['error_mean']:.2f}",
                     fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def report(record: dict) -> None:
    print(f"{'model':<40} {'Spearman mean':>13} {'min':>6} {'term error':>10}")
    for name, r in record["models"].items():
        print(f"{name:<40} {r['spearman_mean']:>13.3f} {r['spearman_min']:>6.3f} "
              f"{r['error_mean']:>10.3f}"
              + (f"  (regressor's reading: {r['error_regressor_mean']:.3f}; the two "
                 f"instruments {r['segmenter_vs_regressor_rms_in_class_sd']:.2f} class sd "
                 f"apart)" if "error_regressor_mean" in r else ""))
    for res, r in record.get("instruments_on_real_renders", {}).items():
        print(f"real renders, {res} px: segmenter {r['segmenter_rms_in_class_sd']:.2f}, "
              f"regressor {r['regressor_rms_in_class_sd']:.2f} class sd from the truth")


def main(argv=None) -> dict:
    from jaxaware.outputs import model_report_main

    return model_report_main(
        argv, __doc__.split("\n\n")[0],
        lambda models, per_class, args: measure(models, per_class, args.seed, args.regressor),
        report, plot, per_class=100, quick_per_class=QUICK_PER_CLASS,
        add_arguments=lambda p: p.add_argument(
            "--regressor", action="store_true",
            help="also read the samples with the extent term's regressor (trained first, "
                 "about 3 minutes), and score both instruments on real renders"))


if __name__ == "__main__":
    main()
