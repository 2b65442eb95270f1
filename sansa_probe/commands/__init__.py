"""The command layer: the one grammar every ``python -m sansa_probe.<command>`` speaks (:mod:`.grammar`; the probe commands' run in :mod:`.probe`) and the command registry (:mod:`.registry`)."""
