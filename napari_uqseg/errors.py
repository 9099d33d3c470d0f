"""The one exception type the core raises for bad user input.

It subclasses :class:`ValueError` so callers that already catch ``ValueError`` keep working; the
command line turns it into exit code 2 with the message on stderr, and the GUI into a napari
notification.
"""


class InputError(ValueError):
    """Input that cannot be used as given: the message names the file or value and the problem."""
