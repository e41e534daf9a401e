# Preset files (TOML) shipped with texsynth; see texsynth/presets.py.
