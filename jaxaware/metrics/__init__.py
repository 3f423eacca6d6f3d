"""Evaluation metrics of class-conditional generators (He et al., Sec. 4.4 and App. B).

* :func:`precision_recall`: improved precision and recall (Kynkaanniemi et al., 2019), exact,
  in float32 tiles with a certified error bound and float64 rechecks.
* :func:`ms_ssim`, :func:`ms_ssim_diversity`: MS-SSIM (Wang et al., 2003) with
  pytorch-msssim's conventions, and its mean over the distinct pairs of a set.
* :func:`frechet_distance`: the FID formula without a matrix square root.
* :func:`total_awareness`: the paper's total channel awareness per class.

The package imports no model code (numpy, scipy, jax and :mod:`jaxaware.errors` only), so
it scores features and images from any source. Bad input raises
:class:`jaxaware.errors.JaxawareError` with a one-line message.
"""

from jaxaware.metrics.frechet import frechet_distance as frechet_distance
from jaxaware.metrics.knn import precision_recall as precision_recall
from jaxaware.metrics.msssim import max_scales as max_scales
from jaxaware.metrics.msssim import ms_ssim as ms_ssim
from jaxaware.metrics.msssim import ms_ssim_diversity as ms_ssim_diversity
from jaxaware.metrics.msssim import scale_weights as scale_weights
from jaxaware.metrics.segmentation import segmentation_scores as segmentation_scores
from jaxaware.metrics.total import total_awareness as total_awareness

__all__ = [
    "frechet_distance",
    "max_scales",
    "ms_ssim",
    "ms_ssim_diversity",
    "precision_recall",
    "scale_weights",
    "segmentation_scores",
    "total_awareness",
]
