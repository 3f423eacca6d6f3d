"""The paper's applications (He et al., Sec. 4.1-4.3), measured on the toy world.

* :mod:`.editing`: single-channel editing (Sec. 4.1): channels by category awareness or
  shared by every class under the latent criterion, batched strength sweeps;
  :mod:`.edit_measures`: what an edit changes (per part, background vs object, identity).
* :mod:`.hybridization`: category hybridization (Sec. 4.2): channel mixing and style
  mixing; :mod:`.hybrid_measures`: the classifier's view of the hybrids.
* :mod:`.segmentation`: awareness-weighted K-Means segmentation (Sec. 4.3), with a jitted
  batched K-Means (:mod:`.clustering`) and scores against the world's part segmenter.

Command line: ``jaxaware edit``, ``jaxaware hybridize``, ``jaxaware segment`` (:mod:`.cli`).

What the three share, for scripts that drive them (``experiments/``): :func:`latents`
(latents drawn the family's way), :func:`awareness_for` (an awareness with rows for the
classes used, given or computed), :func:`world_references` (the toy world's classifier
and segmenter when the model is a world model) and :func:`write_json` (results as JSON,
written atomically).
"""

from jaxaware.applications._common import add_experiment_arguments as add_experiment_arguments
from jaxaware.applications._common import awareness_for as awareness_for
from jaxaware.applications._common import class_names as class_names
from jaxaware.applications._common import experiment_out_dir as experiment_out_dir
from jaxaware.applications._common import latents as latents
from jaxaware.applications._common import world_references as world_references
from jaxaware.applications._common import write_json as write_json
from jaxaware.applications.edit_measures import edit_report as edit_report
from jaxaware.applications.edit_measures import score_edits as score_edits
from jaxaware.applications.editing import Channel as Channel
from jaxaware.applications.editing import EditSweep as EditSweep
from jaxaware.applications.editing import category_channels as category_channels
from jaxaware.applications.editing import edit_figure as edit_figure
from jaxaware.applications.editing import edit_sweep as edit_sweep
from jaxaware.applications.editing import parse_channels as parse_channels
from jaxaware.applications.editing import shared_latent_channels as shared_latent_channels
from jaxaware.applications.hybrid_measures import hybrid_report as hybrid_report
from jaxaware.applications.hybridization import Hybrids as Hybrids
from jaxaware.applications.hybridization import channel_mixing as channel_mixing
from jaxaware.applications.hybridization import hybrid_figure as hybrid_figure
from jaxaware.applications.hybridization import hybrid_scores as hybrid_scores
from jaxaware.applications.hybridization import hybridize as hybridize
from jaxaware.applications.hybridization import style_mixing as style_mixing
from jaxaware.applications.hybridization import transplant_channels as transplant_channels
from jaxaware.applications.clustering import kmeans as kmeans
from jaxaware.applications.segmentation import Segmentation as Segmentation
from jaxaware.applications.segmentation import awareness_weights as awareness_weights
from jaxaware.applications.segmentation import pixel_features as pixel_features
from jaxaware.applications.segmentation import segment as segment
from jaxaware.applications.segmentation import segment_report as segment_report
from jaxaware.applications.segmentation import segmentation_figure as segmentation_figure
