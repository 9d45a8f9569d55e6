"""The constants several modules share, in one place: the base image nbenv makes, the Debian suites it
knows, and the image's own user. Changing one here changes every generated file that shows it."""

from __future__ import annotations

# The base images nbenv makes from Debian packages (`nbenv image base`): the tag is the suite.
NBENV_BASE_REPOSITORY = "nbenv/debian-python"
DEFAULT_SUITE = "bookworm"
DEFAULT_BASE_TAG = f"{NBENV_BASE_REPOSITORY}:{DEFAULT_SUITE}"
# The python3 of each Debian release nbenv knows (X.Y): a stable release never moves to another minor.
# The base image built from a suite tells its own in the label `nbenv.base.python` (read from the root filesystem).
SUITE_PYTHON = {"bookworm": "3.11", "trixie": "3.13"}
# The glibc (X.Y) of each suite: which manylinux wheels its Python installs (nbenv.wheel_preflight).
SUITE_GLIBC = {"bookworm": "2.36", "trixie": "2.41"}
# The suites nbenv picks from when no base image is named, in this order: the first whose Python fits.
AUTO_SUITES = ("bookworm", "trixie")

# The image's own user (docker-stacks convention); at run time nbenv.identity decides who runs it.
USER_NAME = "jovyan"
USER_UID = 1000
USER_GID = 100  # the group `users`
USER_HOME = f"/home/{USER_NAME}"
