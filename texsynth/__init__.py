"""texsynth: new audio of any length with the texture of a short recording."""

__version__ = "0.1.0"

from .errors import TexsynthError  # noqa: E402
from .settings import Settings  # noqa: E402
from .synth import synthesize  # noqa: E402
from .api import synthesize_file  # noqa: E402
from . import presets  # noqa: E402

__all__ = ["presets", "Settings", "TexsynthError", "synthesize", "synthesize_file", "__version__"]
