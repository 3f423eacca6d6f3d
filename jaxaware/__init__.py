"""jaxaware: channel awareness for class-conditional GANs (BigGAN, BigGAN-deep) in JAX/Flax."""

from jaxaware import interventions as interventions
from jaxaware import toyworld as toyworld
from jaxaware.awareness import Awareness as Awareness
from jaxaware.awareness import chunk_awareness as chunk_awareness
from jaxaware.awareness import compute_awareness as compute_awareness
from jaxaware.awareness import probes as probes
from jaxaware.classes import imagenet_class_names as imagenet_class_names
from jaxaware.classes import resolve_classes as resolve_classes
from jaxaware.errors import JaxawareError as JaxawareError
from jaxaware.generate import forward as forward
from jaxaware.generate import generate as generate
from jaxaware.generate import sample as sample
from jaxaware.generate import statistic_weights as statistic_weights
from jaxaware.interventions import ChannelEdit as ChannelEdit
from jaxaware.interventions import FlatEdit as FlatEdit
from jaxaware.model import Model as Model
from jaxaware.model import init_random as init_random
from jaxaware.model import load as load
from jaxaware.models import FAMILIES as FAMILIES
from jaxaware.models import PRESETS as PRESETS
from jaxaware.models import BigGANConfig as BigGANConfig
from jaxaware.models import BigGANDeepConfig as BigGANDeepConfig
from jaxaware.models import family_of as family_of
from jaxaware.models.layers import Capture as Capture
from jaxaware.sites import Site as Site
from jaxaware.sites import block_sites as block_sites
from jaxaware.sites import site_table as site_table
from jaxaware.truncation import stats_blend as stats_blend
from jaxaware.truncation import truncated_noise as truncated_noise
from jaxaware.weights_io import load_weights as load_weights
from jaxaware.weights_io import save_weights as save_weights

__version__ = "0.2.0"
