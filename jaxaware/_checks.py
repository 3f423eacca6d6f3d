"""The old, private name of :mod:`jaxaware.checks`: use that module.

Kept only while ``jaxaware/model.py`` (being edited elsewhere) still imports from here;
delete this file once it imports from :mod:`jaxaware.checks`.
"""

from jaxaware.checks import *  # noqa: F403
from jaxaware.checks import __all__ as __all__
