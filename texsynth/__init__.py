"""texsynth: new audio of any length with the texture of a short recording."""

from .errors import TexsynthError
from .settings import Settings
from .synth import synthesize

__version__ = "0.1.0"
__all__ = ["Settings", "TexsynthError", "synthesize", "__version__"]
