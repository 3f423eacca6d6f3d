"""The paper's analyses of channel awareness (He et al., Sec. 3 and App. A), one module each.

* :mod:`.ablation`: zeroing the lowest-, random- and highest-awareness channels (Fig. 3);
* :mod:`.sweep`: the channel-classifier response, exact (a vmapped sweep over edits) and
  first order (one backward pass for every channel of every site);
* :mod:`.response`: its correlation with category awareness (Fig. 4, App. A);
* :mod:`.overlap`: top-k channel overlap between classes (Fig. 5a);
* :mod:`.transfer`: one class's channel edited in other classes (Fig. 5b);
* :mod:`.shared`: channels in the top-k of every class (Tab. 1);
* :mod:`.classifier`: the classifier the analyses ask (any ``images -> logits``);
* :mod:`.figures`: the figures; :mod:`.cli`: ``jaxaware analyze VERB``;
* :mod:`.experiment`: what the paper-reproduction scripts in ``experiments/`` share;
* :func:`pearson`, :func:`spearman`: the correlations the analyses report (NaN where
  either side is constant), for scripts that correlate their own columns.

Every result has ``to_json()``: the numbers behind its figure, with documented keys.
"""

from jaxaware.analysis._common import pearson as pearson
from jaxaware.analysis._common import spearman as spearman
from jaxaware.analysis.ablation import Ablation as Ablation
from jaxaware.analysis.ablation import ablation_groups as ablation_groups
from jaxaware.analysis.classifier import Classifier as Classifier
from jaxaware.analysis.classifier import as_classifier as as_classifier
from jaxaware.analysis.classifier import load_classifier_spec as load_classifier_spec
from jaxaware.analysis.classifier import world_classifier as world_classifier
from jaxaware.analysis.overlap import Overlap as Overlap
from jaxaware.analysis.overlap import channel_overlap as channel_overlap
from jaxaware.analysis.overlap import family_means as family_means
from jaxaware.analysis.response import ResponseCorrelation as ResponseCorrelation
from jaxaware.analysis.response import response_correlation as response_correlation
from jaxaware.analysis.response import SiteScan as SiteScan
from jaxaware.analysis.response import savgol_window as savgol_window
from jaxaware.analysis.response import scan_sites as scan_sites
from jaxaware.analysis.shared import SharedChannels as SharedChannels
from jaxaware.analysis.shared import shared_channels as shared_channels
from jaxaware.analysis.sweep import Responses as Responses
from jaxaware.analysis.sweep import exact_response as exact_response
from jaxaware.analysis.sweep import first_order_response as first_order_response
from jaxaware.analysis.sweep import site_columns as site_columns
from jaxaware.analysis.transfer import Transfer as Transfer
from jaxaware.analysis.transfer import channel_transfer as channel_transfer

__all__ = [
    "Ablation", "ablation_groups",
    "Classifier", "as_classifier", "load_classifier_spec", "world_classifier",
    "Overlap", "channel_overlap", "family_means",
    "ResponseCorrelation", "response_correlation", "savgol_window", "SiteScan", "scan_sites",
    "SharedChannels", "shared_channels",
    "Responses", "exact_response", "first_order_response", "site_columns",
    "Transfer", "channel_transfer",
    "pearson", "spearman",
]
