"""The ``stylelens`` command: one verb per task, above ``realtime/`` and ``training/``."""
