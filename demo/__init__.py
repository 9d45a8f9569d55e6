"""The demo workspace's own code: the deterministic synthetic data generator that `dvc.yaml` runs, and
the PeMS layout the demo keeps. Not part of the installed nbenv package (`[tool.poetry] packages`
ships only `nbenv/`): it needs numpy, which nbenv does not."""
