"""Tests for jaxaware.classes: the ImageNet table, class selection and class vectors."""

import re

import numpy as np
import pytest

from jaxaware.classes import (
    IMAGENET_NUM_CLASSES,
    imagenet_class_aliases,
    imagenet_class_names,
    imagenet_wnids,
    one_hot,
    resolve_classes,
    to_class_vectors,
)
from jaxaware.errors import JaxawareError

ALIASES = imagenet_class_aliases()


def raises(message):
    """pytest.raises for a JaxawareError with exactly this message."""
    return pytest.raises(JaxawareError, match="^" + re.escape(message) + "$")


# --------------------------------------------------------------------------------------------
# The ImageNet table
# --------------------------------------------------------------------------------------------


def test_imagenet_table_known_entries():
    names = imagenet_class_names()
    assert len(names) == len(ALIASES) == len(imagenet_wnids()) == IMAGENET_NUM_CLASSES == 1000
    assert names[0] == "tench"
    assert names[1] == "goldfish"
    assert names[207] == "golden retriever"
    assert names[999] == "toilet tissue"
    assert ALIASES[0] == ("tench", "Tinca tinca")
    assert ALIASES[999] == ("toilet tissue", "toilet paper", "bathroom tissue")
    assert imagenet_wnids()[0] == "n01440764"
    assert imagenet_wnids()[207] == "n02099601"


def test_imagenet_table_is_well_formed_and_cached():
    assert imagenet_class_names() is imagenet_class_names()
    assert imagenet_class_aliases() is imagenet_class_aliases()
    wnids = imagenet_wnids()
    assert len(set(wnids)) == 1000
    assert all(re.fullmatch(r"n\d{8}", wnid) for wnid in wnids)
    assert all(alias and alias == alias.strip() for aliases in ALIASES for alias in aliases)
    assert all(names[0] == display for names, display in zip(ALIASES, imagenet_class_names()))


# --------------------------------------------------------------------------------------------
# resolve_classes
# --------------------------------------------------------------------------------------------


def test_resolve_mixed_string_keeps_order_and_duplicates():
    assert resolve_classes('207,"golden retriever",1', ALIASES) == [207, 207, 1]


def test_resolve_names_case_underscores_spaces_and_aliases():
    spec = "Golden_Retriever,  GOLDEN   retriever , tinca tinca, toilet paper, goldfish"
    assert resolve_classes(spec, ALIASES) == [207, 207, 0, 999, 1]


def test_resolve_quoted_name_with_comma():
    names = ["cat", "dog, domestic", "fish"]
    assert resolve_classes('"dog, domestic", 2', names) == [1, 2]


def test_resolve_list_of_ints_and_names():
    assert resolve_classes([207, "goldfish", "3", np.int64(5)], ALIASES) == [207, 1, 3, 5]
    assert resolve_classes((0,), ALIASES) == [0]
    assert resolve_classes(np.array([4, 2]), ALIASES) == [4, 2]
    assert resolve_classes(7, ALIASES) == [7]


def test_resolve_all():
    assert resolve_classes("all", ALIASES) == list(range(1000))
    assert resolve_classes(" ALL ", ["a", "b", "c"]) == [0, 1, 2]


def test_resolve_display_name_beats_alias_of_another_class():
    # 'tub' is the display name of 876 (tub, vat) and an alias of 435 (bathtub).
    assert resolve_classes("tub", ALIASES) == [876]
    assert resolve_classes("bathtub", ALIASES) == [435]


def test_resolve_plain_string_table_and_alias_lists():
    assert resolve_classes("b, A", ["a", "b"]) == [1, 0]
    assert resolve_classes("kitty", [("cat", "kitty"), ("dog",)]) == [0]


def test_resolve_index_out_of_range():
    with raises("class index 1000 is out of range; this model has classes 0..999"):
        resolve_classes("1000", ALIASES)
    with raises("class index -1 is out of range; this model has classes 0..999"):
        resolve_classes([-1], ALIASES)
    with raises("class index 3 is out of range; this model has classes 0..2"):
        resolve_classes([3], ["a", "b", "c"])


def test_resolve_unknown_name_lists_closest():
    with raises("unknown class name 'golden retreiver'; closest: golden retriever, "
                "Labrador retriever, Gordon setter"):
        resolve_classes("207, golden retreiver", ALIASES)


def test_resolve_unknown_name_lists_at_most_five():
    names = [f"class {i}" for i in range(10)]
    with pytest.raises(JaxawareError) as info:
        resolve_classes("class x", names)
    closest = str(info.value).split("closest: ")[1].split(", ")
    assert len(closest) == 5


def test_resolve_unknown_name_without_close_match():
    with raises("unknown class name 'xyzzy'; no close match; give a class index or a name from "
                "the model's classes"):
        resolve_classes("xyzzy", ALIASES)


def test_resolve_ambiguous_name():
    with raises("class name 'crane' is ambiguous: it names classes 134 (crane), 517 (crane); "
                "give the index instead"):
        resolve_classes("crane", ALIASES)
    with raises("class name 'panda' is ambiguous: it names classes 387 (lesser panda), "
                "388 (giant panda); give the index instead"):
        resolve_classes("panda", ALIASES)


ACCEPTED = ("give class indices (e.g. 207), class names (e.g. \"golden retriever\"), "
            "a comma-separated mix of both, or 'all'")


@pytest.mark.parametrize("spec", ["", "   ", [], ()])
def test_resolve_empty_spec(spec):
    with raises(f"no classes given; {ACCEPTED}"):
        resolve_classes(spec, ALIASES)


@pytest.mark.parametrize("spec", ["207,,1", "207,", " , "])
def test_resolve_empty_entry(spec):
    with raises(f"class list {spec!r} has an empty entry; separate classes with single commas"):
        resolve_classes(spec, ALIASES)


def test_resolve_line_break():
    with raises("class list '1\\n2' contains a line break; give the classes on one line, "
                "separated by commas"):
        resolve_classes("1\n2", ALIASES)


@pytest.mark.parametrize("entry", [True, 2.0, None])
def test_resolve_bad_entry_type(entry):
    with raises(f"class entries must be ints or names; got {entry!r}"):
        resolve_classes([entry], ALIASES)


def test_resolve_bad_spec_type():
    with raises(f"classes must be a string or a list of ints and names; got float; {ACCEPTED}"):
        resolve_classes(2.5, ALIASES)


def test_resolve_without_names():
    assert resolve_classes("3, 1", None, num_classes=4) == [3, 1]
    assert resolve_classes("all", None, num_classes=2) == [0, 1]
    with raises("class name 'dog' given but this model has no class names; give class "
                "indices 0..3"):
        resolve_classes("3, dog", None, num_classes=4)
    with raises("resolve_classes needs names (the model's class-name table) or num_classes; "
                "got neither"):
        resolve_classes("3", None)


def test_resolve_names_and_num_classes_must_agree():
    assert resolve_classes("1", ["a", "b"], num_classes=2) == [1]
    with raises("the class-name table has 2 entries but num_classes is 3; they must match"):
        resolve_classes("1", ["a", "b"], num_classes=3)


def test_resolve_bad_names_table():
    with raises("names[1] must be a class name or a non-empty list of class names; got []"):
        resolve_classes("0", ["a", []])
    with raises("names must be a sequence with one entry per class (a name or a list of "
                "aliases); got str"):
        resolve_classes("0", "abc")


# --------------------------------------------------------------------------------------------
# one_hot and to_class_vectors
# --------------------------------------------------------------------------------------------


def test_one_hot():
    out = one_hot([2, 0, 2], 3)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0, 0, 1], [1, 0, 0], [0, 0, 1]])
    assert one_hot(np.array([], np.int32), 5).shape == (0, 5)
    assert one_hot([], 5).shape == (0, 5)
    np.testing.assert_array_equal(one_hot(np.array([1], np.uint8), 2), [[0, 1]])


def test_one_hot_accepts_jax_arrays():
    jnp = pytest.importorskip("jax.numpy")
    out = one_hot(jnp.array([207, 1]), 1000)
    assert out.shape == (2, 1000) and out.dtype == np.float32
    assert out[0, 207] == 1 and out[1, 1] == 1 and out.sum() == 2


def test_one_hot_errors():
    with raises("class label 5 is out of range; this model has classes 0..4"):
        one_hot([1, 5], 5)
    with raises("class label -2 is out of range; this model has classes 0..4"):
        one_hot([-2], 5)
    with raises("class labels must be integers; got dtype float64"):
        one_hot([1.0], 5)
    with raises("class labels must have shape [B]; got (2, 1)"):
        one_hot([[1], [2]], 5)
    with raises("num_classes must be a positive int; got 0"):
        one_hot([0], 0)


def test_to_class_vectors_from_labels():
    out = to_class_vectors(np.array([207, 0]), 1000)
    np.testing.assert_array_equal(out, one_hot([207, 0], 1000))
    assert out.dtype == np.float32


def test_to_class_vectors_passes_vectors_through_as_float32():
    vectors = np.zeros((2, 1000), np.float64)
    vectors[0, 207] = 0.5
    vectors[0, 1] = 0.5
    vectors[1, 3] = 1.0
    out = to_class_vectors(vectors, 1000)
    assert out.dtype == np.float32 and out.shape == (2, 1000)
    np.testing.assert_array_equal(out, vectors.astype(np.float32))


def test_to_class_vectors_errors():
    with raises("class vectors must have shape [B, 1000]; got (2, 10)"):
        to_class_vectors(np.zeros((2, 10), np.float32), 1000)
    with raises("class labels of shape [B] must be integers; got dtype float32 (or give class "
                "vectors of shape [B, 1000])"):
        to_class_vectors(np.zeros(2, np.float32), 1000)
    with raises("class input must be integer labels of shape [B] or class vectors of shape "
                "[B, 1000]; got (1, 2, 1000)"):
        to_class_vectors(np.zeros((1, 2, 1000)), 1000)
    with raises("class input must be integer labels of shape [B] or class vectors of shape "
                "[B, 1000]; got ()"):
        to_class_vectors(3, 1000)
    with raises("class vectors contain NaN or infinity; give finite values"):
        to_class_vectors(np.full((1, 3), np.nan), 3)
    with raises("class vectors must be real numbers; got dtype <U1"):
        to_class_vectors(np.full((1, 3), "a"), 3)
