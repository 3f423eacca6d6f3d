"""jaxaware: channel awareness for class-conditional GANs in JAX/Flax."""

from jaxaware.errors import JaxawareError as JaxawareError
