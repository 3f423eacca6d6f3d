"""The names the README tells users to import exist and are what they claim."""

import jaxaware


def test_public_names_import():
    for name in [
        "load", "generate", "sample", "init_random", "compute_awareness", "probes",
        "Awareness", "Capture", "ChannelEdit", "interventions", "truncated_noise",
        "stats_blend", "site_table", "resolve_classes", "imagenet_class_names", "Model",
        "BigGANConfig", "BigGANDeepConfig", "PRESETS", "JaxawareError", "toyworld", "load_weights",
        "save_weights", "Site", "forward", "FlatEdit", "block_sites", "family_of", "FAMILIES",
        "statistic_weights", "chunk_awareness",
    ]:  # fmt: skip
        assert hasattr(jaxaware, name), name
    assert callable(jaxaware.interventions.zero)
    assert jaxaware.imagenet_class_names()[207] == "golden retriever"
    assert len(jaxaware.site_table(jaxaware.PRESETS["biggan-deep-256"])) == 48
    assert len(jaxaware.site_table(jaxaware.PRESETS["biggan-256"])) == 12
