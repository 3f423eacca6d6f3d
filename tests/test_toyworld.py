"""The toy world: determinism, ground-truth part maps, balance, class-independent factors,
metadata that agrees with the renderer, and clear errors for bad arguments."""

import numpy as np
import pytest

from jaxaware.errors import JaxawareError
from jaxaware.toyworld import WORLD, background, balanced_classes, factors, light, render
from jaxaware.toyworld import sample_dataset
from jaxaware.toyworld.render import class_colours


@pytest.fixture(scope="module")
def data32():
    return sample_dataset(16 * 40, seed=3, resolution=32)


def test_output_conventions(data32):
    images, classes, part_maps = data32
    assert images.shape == (640, 32, 32, 3) and images.dtype == np.float32
    assert part_maps.shape == (640, 32, 32) and part_maps.dtype == np.int32
    assert classes.shape == (640,)
    assert images.min() >= -1.0 and images.max() <= 1.0
    assert images.min() < -0.5 and images.max() > 0.9  # uses the range, not a sliver
    assert part_maps.min() == 0 and part_maps.max() < WORLD.num_parts
    x64, _ = render([0, 5], seed=3, resolution=64)
    assert x64.shape == (2, 64, 64, 3)


def test_deterministic_and_batch_independent():
    cls = np.arange(48) % 16
    a, pa = render(cls, seed=11, start=100)
    b, pb = render(cls, seed=11, start=100)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(pa, pb)
    # image i depends on (seed, start + i) and its class only, not on its batch
    c, pc = render(cls[10:20], seed=11, start=110)
    np.testing.assert_array_equal(a[10:20], c)
    np.testing.assert_array_equal(pa[10:20], pc)
    single, _ = render([cls[7]], seed=11, start=107)
    np.testing.assert_array_equal(a[7], single[0])
    # other seeds and other indices give other images
    d, _ = render(cls, seed=12, start=100)
    e, _ = render(cls, seed=11, start=148)
    assert not np.any(np.all(a == d, axis=(1, 2, 3)))
    assert not np.any(np.all(a == e, axis=(1, 2, 3)))


def test_no_two_images_alike(data32):
    images, _, _ = data32
    flat = images.reshape(len(images), -1)
    assert len(np.unique(flat, axis=0)) == len(images)


def test_class_names_and_indices_render_the_same():
    a, pa = render(["cat", "bus", "castle"], seed=1)
    b, pb = render(np.array([0, 5, 15]), seed=1)
    c, pc = render(["cat", 5, np.int32(15)], seed=1)
    for x, y in ((a, b), (pa, pb), (a, c), (pa, pc)):
        np.testing.assert_array_equal(x, y)


def test_background_pixels_are_the_factors_background(data32):
    images, _, part_maps = data32
    bg = background(factors(len(images), seed=3), 32) * 2.0 - 1.0
    is_bg = part_maps == 0
    assert 0.3 < is_bg.mean() < 0.9
    np.testing.assert_allclose(images[is_bg], bg[is_bg], atol=1e-6)
    # and the object stands out from the background it covers
    diff = np.abs(images - bg).max(axis=-1)
    assert np.mean(diff[~is_bg] > 0.05) > 0.97


def test_each_part_is_one_colour_under_the_light(data32):
    """Every labelled pixel is its part's colour times the lighting: if the part map were
    off by even one pixel somewhere, a part region would contain two colours."""
    images, classes, part_maps = data32
    f = factors(len(images), seed=3)
    shade = light(f, 32)
    rgb = (images + 1.0) / 2.0
    checked = 0
    for i in range(0, len(images), 7):
        for p in np.unique(part_maps[i]):
            if p == 0:
                continue
            m = part_maps[i] == p
            unlit = rgb[i][m] / shade[i][m][:, None]
            unclipped = (rgb[i][m] > 1e-4).all(-1) & (rgb[i][m] < 1 - 1e-4).all(-1)
            if unclipped.sum() < 2:
                continue
            assert np.ptp(unlit[unclipped], axis=0).max() < 1e-4, (i, p)
            checked += 1
    assert checked > 200
    # neighbouring parts of one image have visibly different colours
    jit_free = class_colours(np.arange(16), np.full((16, 4), 0.5, np.float32))
    for c in range(16):
        cols = jit_free[c][WORLD.class_parts[c]]
        d = np.abs(cols[:, None] - cols[None]).max(-1)
        assert (d + np.eye(len(cols))).min() > 0.05, WORLD.class_names[c]


def test_parts_rendered_match_metadata():
    cls = np.repeat(np.arange(16), 24)
    _, part_maps = render(cls, seed=5, resolution=32)
    for c in range(16):
        maps = part_maps[cls == c]
        present = np.array([[np.any(m == p) for p in range(WORLD.num_parts)] for m in maps])
        assert not present[:, ~WORLD.class_parts[c]][:, 1:].any(), WORLD.class_names[c]
        # every part the metadata lists is visible in nearly every image of the class
        frac = present[:, WORLD.class_parts[c]].mean(axis=0)
        assert frac.min() >= 0.9, (WORLD.class_names[c], frac)


def test_64_is_the_same_scene_as_32():
    cls = np.arange(32) % 16
    _, p32 = render(cls, seed=2, resolution=32)
    _, p64 = render(cls, seed=2, resolution=64)
    # the 64x64 pixel at the same place as a 32x32 pixel's top-left quarter
    agree = p64[:, ::2, ::2] == p32
    assert agree.mean() > 0.85


def test_classes_balanced():
    for n, start in ((160, 0), (16 * 25, 32)):
        counts = np.bincount(balanced_classes(n, seed=4, start=start), minlength=16)
        assert (counts == n // 16).all()
    counts = np.bincount(balanced_classes(100, seed=4), minlength=16)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 100
    # an unaligned start spans two partial blocks
    counts = np.bincount(balanced_classes(100, seed=4, start=5), minlength=16)
    assert counts.max() - counts.min() <= 2 and counts.sum() == 100
    _, classes, _ = sample_dataset(64, seed=0)
    assert (np.bincount(classes, minlength=16) == 4).all()
    # the order is shuffled, not the same for every block
    blocks = balanced_classes(64, seed=4).reshape(4, 16)
    assert len({tuple(b) for b in blocks}) == 4
    # the assignment is deterministic and consistent across starts
    np.testing.assert_array_equal(balanced_classes(50, seed=4, start=10),
                                  balanced_classes(60, seed=4)[10:])


def test_factors_do_not_depend_on_the_class():
    """Same (seed, index), different classes: the pixels that are background in both images
    are identical, and so are the light and pose."""
    idx_cls = np.arange(64) % 16
    a, pa = render(idx_cls, seed=9, start=500)
    b, pb = render((idx_cls * 5 + 3) % 16, seed=9, start=500)
    both = (pa == 0) & (pb == 0)
    assert both.mean() > 0.2
    np.testing.assert_array_equal(a[both], b[both])


def test_background_statistics_equal_across_classes(data32):
    images, classes, part_maps = data32
    is_bg = part_maps == 0
    # per image: mean background colour and its brightness range (gradient or flat)
    stats = []
    for i in range(len(images)):
        px = images[i][is_bg[i]]
        stats.append(np.concatenate([px.mean(0), [np.ptp(px.mean(-1))]]))
    stats = np.array(stats)
    overall_mean, overall_std = stats.mean(0), stats.std(0)
    for c in range(16):
        s = stats[classes == c]
        se = overall_std / np.sqrt(len(s))
        assert (np.abs(s.mean(0) - overall_mean) < 4.5 * se).all(), WORLD.class_names[c]
    # and the object position (centre of the factors) has the same spread for every class
    off = factors(len(images), seed=3).offset
    for c in range(16):
        assert np.abs(off[classes == c].mean(0)).max() < 0.05


def test_objects_vary_in_position_scale_rotation():
    f = factors(2000, seed=0)
    assert f.offset.std(0).min() > 0.05
    assert f.scale.std() > 0.03
    assert 0.15 < np.abs(f.rotation).max() <= np.deg2rad(15.0) + 1e-6
    assert 0.4 < f.mirror.mean() < 0.6
    assert 0.4 < np.mean(np.all(f.bg_from == f.bg_to, axis=1)) < 0.6


# ------------------------------------------------------------------------- metadata


def test_metadata_shapes_and_vocabulary():
    assert len(WORLD.class_names) == 16 and len(set(WORLD.class_names)) == 16
    assert len(WORLD.family_names) == 4
    assert np.bincount(WORLD.class_family).tolist() == [4, 4, 4, 4]
    assert WORLD.part_names[0] == "background"
    assert WORLD.class_parts.shape == (16, WORLD.num_parts)
    assert not WORLD.class_parts[:, 0].any()
    assert WORLD.palettes.shape == (16, WORLD.num_parts, 3)
    assert WORLD.family_of("cat") == "critters" and WORLD.family_of(15) == "buildings"
    assert "tail" in WORLD.parts_of("cat") and "tail" not in WORLD.parts_of("bear")
    with pytest.raises(ValueError):
        WORLD.similarity[0, 0] = 0.5  # read-only


def test_families_share_part_vocabularies():
    for fam in range(4):
        members = np.flatnonzero(WORLD.class_family == fam)
        others = np.flatnonzero(WORLD.class_family != fam)
        vocab = WORLD.class_parts[members].any(0)
        # the family's vocabulary is mostly its own: at most one part is shared
        assert (vocab & WORLD.class_parts[others].any(0)).sum() <= 1
        # all of a family's classes share at least two parts
        common = WORLD.class_parts[members].all(0).sum()
        assert common >= 1 and WORLD.class_parts[members].sum(1).min() >= 2


def test_similarity_matrix():
    s = WORLD.similarity
    assert s.shape == (16, 16)
    np.testing.assert_allclose(s, s.T)
    np.testing.assert_allclose(np.diag(s), 1.0)
    assert (s >= 0).all() and (s <= 1).all()
    same = WORLD.class_family[:, None] == WORLD.class_family[None, :]
    off = ~np.eye(16, dtype=bool)
    assert s[same & off].mean() > 4 * s[~same].mean()
    for c, name in enumerate(WORLD.class_names):
        family = {WORLD.class_names[j] for j in np.flatnonzero(WORLD.class_family ==
                                                                WORLD.class_family[c])}
        assert set(WORLD.most_similar(name, 3)) == family - {name}
    # derived from parts: classes without a shared part are less similar than any pair
    # with identical part sets
    no_shared = (WORLD.class_parts.astype(int) @ WORLD.class_parts.T.astype(int)) == 0
    identical = (WORLD.part_similarity == 1) & off
    assert s[no_shared].max() < s[identical].min()
    # and from palettes: among identical part sets, closer palettes are more similar
    i, j = np.nonzero(identical)
    assert np.corrcoef(s[i, j], WORLD.palette_similarity[i, j])[0, 1] > 0.99


# ------------------------------------------------------------------------- bad arguments


def test_unknown_class_name_lists_closest_first():
    with pytest.raises(JaxawareError,
                       match=r"^unknown class 'kat'; accepted names \(closest first\): cat, "):
        render(["kat"])
    with pytest.raises(JaxawareError, match=r"^unknown class 'buss'; .*: bus, "):
        WORLD.class_index("buss")
    with pytest.raises(JaxawareError) as e:
        WORLD.class_index("zzz")
    assert all(name in str(e.value) for name in WORLD.class_names)
    assert "\n" not in str(e.value)


def test_unknown_class_index():
    with pytest.raises(JaxawareError, match=r"^unknown class 16; class indices are 0\.\.15$"):
        render(np.array([0, 16]))
    with pytest.raises(JaxawareError, match=r"^unknown class -1; class indices are 0\.\.15$"):
        render([-1])
    with pytest.raises(JaxawareError, match=r"^classes must be 1-D, got shape \(2, 2\)$"):
        render(np.zeros((2, 2), int))
    with pytest.raises(JaxawareError, match=r"^classes must be a 1-D sequence of class names "
                       r"or indices, got 'cat'$"):
        render("cat")
    with pytest.raises(JaxawareError, match=r"^a class must be a name or an integer index, "
                       r"got 1\.5$"):
        render([1.5])


def test_unsupported_resolution():
    for bad in (48, 128, 0):
        with pytest.raises(JaxawareError,
                           match=rf"^resolution {bad} is not supported; use 32 or 64$"):
            render([0], resolution=bad)
    with pytest.raises(JaxawareError, match=r"^resolution 48 is not supported; use 32 or 64$"):
        sample_dataset(4, resolution=48)


def test_negative_or_bad_counts():
    with pytest.raises(JaxawareError, match=r"^n must be a non-negative integer, got -3$"):
        sample_dataset(-3)
    with pytest.raises(JaxawareError, match=r"^n must be a non-negative integer, got 2\.5$"):
        sample_dataset(2.5)
    with pytest.raises(JaxawareError, match=r"^seed must be a non-negative integer, got -1$"):
        render([0], seed=-1)
    with pytest.raises(JaxawareError, match=r"^start must be a non-negative integer, got -5$"):
        render([0], start=-5)
    images, classes, maps = sample_dataset(0)
    assert images.shape == (0, 32, 32, 3) and classes.shape == (0,) and maps.shape == (0, 32, 32)
