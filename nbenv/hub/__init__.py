"""`nbenv hub`: the same environments for a team on JupyterHub (DockerSpawner on one host, SwarmSpawner across
several, KubeSpawner/Zero to JupyterHub on Kubernetes). profiles.py is the pure model every renderer reads."""
