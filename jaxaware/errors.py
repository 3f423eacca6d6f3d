"""The one exception type jaxaware raises for bad input.

Every message is a single line that says what was wrong and what is accepted,
so the CLI can print it as ``error: <message>`` and exit with status 2.
"""


class JaxawareError(ValueError):
    """Bad input or a bad file: the message says what was wrong and what is accepted."""
