"""nbenv: declarative notebook environments (Poetry groups + DVC data -> Docker images -> Jupyter)."""

__version__ = "0.1.0"
