"""jaxaware: channel awareness for class-conditional GANs (BigGAN-deep) in JAX/Flax."""

from jaxaware import interventions as interventions
from jaxaware import toyworld as toyworld
from jaxaware.api import BigGAN as BigGAN
from jaxaware.api import generate as generate
from jaxaware.api import init_random as init_random
from jaxaware.api import load as load
from jaxaware.api import sample as sample
from jaxaware.awareness import Awareness as Awareness
from jaxaware.awareness import compute_awareness as compute_awareness
from jaxaware.awareness import probes as probes
from jaxaware.classes import imagenet_class_names as imagenet_class_names
from jaxaware.classes import resolve_classes as resolve_classes
from jaxaware.config import PRESETS as PRESETS
from jaxaware.config import BigGANConfig as BigGANConfig
from jaxaware.errors import JaxawareError as JaxawareError
from jaxaware.interventions import ChannelEdit as ChannelEdit
from jaxaware.model import Capture as Capture
from jaxaware.model import Generator as Generator
from jaxaware.sites import Site as Site
from jaxaware.sites import site_table as site_table
from jaxaware.truncation import stats_blend as stats_blend
from jaxaware.truncation import truncated_noise as truncated_noise
from jaxaware.weights_io import load_weights as load_weights
from jaxaware.weights_io import save_weights as save_weights

__version__ = "0.1.0"
