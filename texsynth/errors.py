"""The one exception texsynth raises for bad input or settings."""


class TexsynthError(Exception):
    """Bad input, settings or output path, with a message fit for one line on stderr.

    Messages name the file or option and what is allowed, e.g.
    ``"rain.wav: sample rate 1 Hz must be at least 2000 Hz"``.
    """
