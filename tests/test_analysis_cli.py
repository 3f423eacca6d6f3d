"""``jaxaware analyze VERB`` end to end on a tiny saved model with a classifier file, and
its one-line errors."""

from __future__ import annotations

import json

import pytest

from jaxaware.cli import main
from test_analysis_models import tiny_model

CLASSIFIER = """
import jax.numpy as jnp
import numpy as np

_W = jnp.asarray(np.random.RandomState(0).randn(192, 4).astype(np.float32) * 0.3)


def logits(images):
    return images.reshape(images.shape[0], -1) @ _W


def wrong(images):
    return images.reshape(images.shape[0], -1)[:, :3]


def broken(images):
    raise RuntimeError("no GPU here")


VALUE = 3
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("analyze")
    weights = str(root / "tiny")
    tiny_model().save(weights)
    clf = root / "clf.py"
    clf.write_text(CLASSIFIER)
    (root / "bad.py").write_text("def logits(x):\n    return x +\n")
    return root, weights, str(clf)


def _run(capsys, *argv):
    rc = main(["analyze", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


VERBS = {
    "ablation": ["--class", "1", "--latents", "2"],
    "response": ["--classes", "0,1", "--site", "L5", "--latents", "2", "--group", "2"],
    "overlap": ["--k", "2", "--sites", "L0,L4"],
    "transfer": ["--source", "1", "--targets", "0,1", "--latents", "2"],
    "shared": ["--k", "3"],
}
KEYS = {"ablation": {"summary", "channels"}, "response": {"mean_pearson", "drop"},
        "overlap": {"matrix", "k"}, "transfer": {"pixel_change", "channel"},
        "shared": {"counts", "channels"}}


@pytest.mark.parametrize("verb", list(VERBS))
def test_every_verb_writes_its_figure_and_json(verb, setup, capsys):
    root, weights, clf = setup
    out = root / f"{verb}.png"
    extra = [] if verb in ("overlap", "shared") else ["--classifier", f"{clf}:logits"]
    rc, stdout, err = _run(capsys, verb, weights, *VERBS[verb], *extra,
                           "--awareness-latents", "8", "--out", out, "--quiet")
    assert rc == 0, err
    assert out.stat().st_size > 1000 and out.read_bytes()[:4] == b"\x89PNG"
    data = json.loads((root / f"{verb}.json").read_text())
    assert data["analysis"] == verb and KEYS[verb] <= set(data)
    assert f"wrote {out}" in stdout


def test_classifier_file_errors(setup, capsys):
    root, weights, clf = setup
    cases = {
        f"{root}/missing.py:logits": f"classifier file {root}/missing.py does not exist; give "
                                     "FILE.py:NAME with an existing Python file",
        f"{clf}:nope": f"classifier file {clf} has no function 'nope'; it defines: broken, "
                       "logits, wrong",
        f"{clf}:VALUE": f"'VALUE' in classifier file {clf} is not a function (it is a int)",
        f"{clf}:wrong": f"classifier {clf}:wrong returned shape [2, 3] for images [2, 8, 8, 3]; "
                        "it must return logits [2, 4] (one per class of the model)",
        f"{clf}:broken": f"classifier {clf}:broken failed on images [2, 8, 8, 3] "
                         "(RuntimeError: no GPU here)",
        clf: f"--classifier must be FILE.py:NAME, e.g. inception.py:logits; got '{clf}'",
    }
    for spec, message in cases.items():
        rc, _, err = _run(capsys, "response", weights, "--classifier", spec, "--latents", "2")
        assert (rc, err) == (2, f"error: {message}\n")
    rc, _, err = _run(capsys, "response", weights, "--classifier", f"{root}/bad.py:logits")
    assert rc == 2 and err.startswith(f"error: cannot import classifier file {root}/bad.py "
                                      "(SyntaxError: ") and err.count("\n") == 1


def test_bad_input_errors(setup, capsys):
    root, weights, clf = setup
    c = ["--classifier", f"{clf}:logits"]
    cases = [
        (["response", weights, *c, "--group", "3"],
         "group size 3 does not divide the 16 channels of block0.bn0; use a divisor of 16"),
        (["response", weights, *c, "--latents", "1"],
         "num_latents (M latent pairs) must be an integer >= 2; got 1"),
        (["response", weights, *c, "--site", "L8"],
         "unknown site 'L8'; CCBN sites are block0.bn0..block1.bn3 (L0..L7); closest: "
         "block1.bn3, block1.bn2, block1.bn1"),
        (["ablation", weights, *c, "--class", "7"],
         "class index 7 is out of range; this model has classes 0..3"),
        (["shared", weights, "--sites", "L1"],
         "k=10 is larger than site block0.bn1 (4 channels); give k <= 4 or choose wider "
         "sites"),
        (["overlap", weights, "--k", "17"],
         "k=17 is larger than site block0.bn0 (16 channels); give k <= 16 or choose wider "
         "sites"),
        (["response", weights],
         "give a classifier (a function images [B, H, W, 3] in [-1, 1] -> logits [B, K]; on "
         "the command line --classifier FILE.py:NAME); the toy world's classifier fits only "
         "models of the toy world's 16 classes"),
    ]
    for argv, message in cases:
        rc, _, err = _run(capsys, *argv, "--quiet")
        assert (rc, err) == (2, f"error: {message}\n")
    with pytest.raises(SystemExit) as e:
        main(["analyze", "histogram"])
    assert e.value.code == 2


def test_world_classifier_is_the_shipped_one_as_a_pure_function():
    import jax
    import numpy as np

    from jaxaware.analysis import as_classifier, world_classifier
    from jaxaware.model import load
    from jaxaware.toyworld import load_classifier, render

    images32, _ = render(["cat", "bus", "pine"], seed=0, resolution=32)
    images64, _ = render(["cat", "bus", "pine"], seed=0, resolution=64)
    ref = load_classifier()
    clf = world_classifier()
    for images in (images32, images64):
        np.testing.assert_allclose(np.asarray(jax.jit(clf.logits)(images)),
                                   ref.logits(images), rtol=1e-4, atol=1e-4)
    assert as_classifier(None, load()) is clf and as_classifier(ref, load()).traceable


def test_public_names():
    import jaxaware.analysis as analysis

    for name in analysis.__all__:
        assert getattr(analysis, name) is not None, name
    assert callable(analysis.response_correlation) and callable(analysis.scan_sites)
