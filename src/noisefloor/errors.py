"""The one base class of the errors a user can fix.

Bad input (a params key, a file, a table column), a setting of the
environment, or a machine that lacks what the params ask for is reported as a
subclass of :class:`NoisefloorError` whose message is one line naming the
problem. :func:`noisefloor.cli.main` prints such an error as
``noisefloor: error: <message>`` and exits 2; any other exception is a bug and
keeps its traceback.

This module imports nothing: the CLI catches the base class in every
subcommand, including the fork-server client, which exists to avoid importing
torch.
"""


class NoisefloorError(Exception):
    """A problem in what the user gave or where the command runs; the message is one line naming it.

    Subclasses keep a second base (``ValueError`` or ``RuntimeError``) so
    callers that catch those keep working.
    """
