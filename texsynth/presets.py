"""Named presets shipped with the package, and user preset files: TOML over the defaults."""

from __future__ import annotations

import logging
import tomllib
from importlib import resources
from pathlib import Path

from .errors import TexsynthError
from .settings import Settings, from_mapping

log = logging.getLogger(__name__)

DEFAULT = "default"
# Unless a preset is named, inputs of these kinds (see texsynth.api.input_kind) get these
# presets instead of the default.
BY_KIND = {"repeats": "rhythmic", "tonal": "pitched"}


def _preset_dir() -> Path:
    """The installed presets, or the repository's ``presets/`` when run from a checkout."""
    try:
        folder = Path(str(resources.files("texsynth.preset_files")))
        if folder.is_dir() and any(folder.glob("*.toml")):
            return folder
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parent.parent / "presets"


def available() -> dict[str, str]:
    """Preset name -> its one-line description, sorted by name."""
    out = {}
    for path in sorted(_preset_dir().glob("*.toml")):
        out[path.stem] = str(_read(path).get("description", "")).strip()
    return out


def _read(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TexsynthError(f"{path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise TexsynthError(f"{path}: cannot read preset ({exc.strerror})") from None


def resolve(name_or_path: str) -> Path:
    """The file behind a preset name (``hq``) or a path (``my.toml``)."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists() or "/" in name_or_path:
        if not candidate.is_file():
            raise TexsynthError(f"{name_or_path}: preset file not found")
        if candidate.suffix.lower() != ".toml":
            raise TexsynthError(f"{name_or_path}: a preset file must be a .toml file")
        return candidate
    path = _preset_dir() / f"{name_or_path}.toml"
    if not path.is_file():
        names = ", ".join(available())
        raise TexsynthError(f"preset={name_or_path!r} must be one of {names}, or a .toml file")
    return path


def load(name_or_path: str = DEFAULT, overrides: dict | None = None) -> Settings:
    """Settings from a preset over the defaults, then ``overrides`` (from ``--set``) on top.

    A preset file holds setting keys at its top level, plus an optional ``description``; keys
    it leaves out keep their default values. Nothing in it is executed.
    """
    path = resolve(name_or_path)
    values = _read(path)
    values.pop("description", None)
    settings = from_mapping(values, base=Settings(), source=str(path))
    if overrides:
        settings = from_mapping(overrides, base=settings, source="--set")
    return settings


def by_kind(overrides: dict | None = None) -> dict:
    """`BY_KIND` loaded, with ``overrides`` on top: kind -> (preset name, settings).

    A kind whose preset the overrides do not fit (``n_fft=256`` against `pitched`'s hop of
    256) is left out: inputs of that kind get the preset named instead, overrides and all.
    """
    kinds = {}
    for kind, name in BY_KIND.items():
        try:
            kinds[kind] = (name, load(name, overrides))
        except TexsynthError as exc:
            log.info("%s preset left out for %s inputs: %s", name, kind, exc)
    return kinds


def to_toml(settings: Settings) -> str:
    """The settings as a preset file that `load` reads back to the same settings."""
    lines = []
    for key, value in settings.to_dict().items():
        if isinstance(value, str):
            lines.append(f'{key} = "{value}"')
        elif isinstance(value, list):
            lines.append(f"{key} = [{', '.join(str(v) for v in value)}]")
        else:
            lines.append(f"{key} = {value!r}")
    return "\n".join(lines) + "\n"
