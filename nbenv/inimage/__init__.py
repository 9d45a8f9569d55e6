"""The scripts that run inside images, not in nbenv's process.

nbenv copies these files as they are and the image runs them: `register.py` (kernel registration and
the build record), `fetch_uv.py` (installs uv in the tools stage) and `with-secrets.sh` (hands a
downloading step the build secrets) into each build context's `build/` (`nbenv.generate.BUILD_SCRIPTS`),
`run_driver.py` (`nbenv run`'s nbclient driver) into the run's io directory as `driver.py`, and
`dvc_pull.py` (the Kubernetes init container's `dvc pull` of a profile's data, delivered in a ConfigMap
by nbenv/hub/kubernetes.py).
The image's own Python (or sh) runs them, so they use only the standard library and what the image
has (ipykernel, nbclient); nbenv never imports them. `script` reads one as text, through
importlib.resources, so they work from a wheel as from a checkout.
"""

from __future__ import annotations

from importlib import resources


def script(name: str) -> str:
    """The text of one in-image script of this package (package data, read at run time)."""
    return resources.files(__name__).joinpath(name).read_text("utf-8")
