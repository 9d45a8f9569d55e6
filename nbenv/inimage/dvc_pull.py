"""Runs in the data-puller init container on Kubernetes (docs/kubernetes.md): `dvc pull` of the given data
paths from the S3 remote into the data volume, which the notebook container then mounts read-only.

Usage: python3 dvc_pull.py POINTER_LIST WORKSPACE TARGET...
POINTER_LIST: a JSON list of the repository paths of the DVC pointer files (dvc.yaml, dvc.lock, *.dvc),
which the ConfigMap `nbenv-dvc` puts beside it at those paths. WORKSPACE: the data volume, made a DVC
workspace without git. The remote comes from NBENV_DVC_REMOTE (and NBENV_DVC_ENDPOINT_URL); the
credentials from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: a Secret's keys), which
never reach a file. Every command is an argument list (no shell). Standard library only, plus the dvc
command of the image.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys


def dvc(workspace: str, *args: str) -> None:
    print("dvc", *args, file=sys.stderr, flush=True)
    subprocess.run(["dvc", *args], cwd=workspace, check=True)


def main(pointer_list: str, workspace: str, targets: list[str]) -> None:
    source = os.path.dirname(pointer_list)
    with open(pointer_list, encoding="utf-8") as f:
        pointers = json.load(f)
    for path in pointers:
        if path.startswith("/") or ".." in path.split("/"):
            sys.exit(f"dvc_pull: refusing the pointer path {path!r}")
        os.makedirs(os.path.join(workspace, os.path.dirname(path)), exist_ok=True)
        shutil.copyfile(os.path.join(source, path), os.path.join(workspace, path))

    if not os.path.isdir(os.path.join(workspace, ".dvc")):
        dvc(workspace, "init", "--no-scm", "--quiet")
    dvc(workspace, "config", "core.analytics", "false")
    dvc(workspace, "config", "cache.type", "hardlink,copy")  # the cache lives in the same volume: no second copy
    dvc(workspace, "remote", "add", "--force", "--default", "nbenv", os.environ["NBENV_DVC_REMOTE"])
    if os.environ.get("NBENV_DVC_ENDPOINT_URL"):
        dvc(workspace, "remote", "modify", "nbenv", "endpointurl", os.environ["NBENV_DVC_ENDPOINT_URL"])
    dvc(workspace, "pull", "--", *targets)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
