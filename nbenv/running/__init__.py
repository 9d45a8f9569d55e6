"""Running environments, one room: `up`/`down`/`ps`/`logs`/`shell` (lifecycle.py) over the state nbenv keeps
for a running environment (state.py: token, compose.env, lock) and the Jupyter it talks to (jupyter.py:
port, URL, readiness); `nbenv run` executes a notebook headless (headless.py, over notebook.py's pure
notebook handling). Calls go downward only: lifecycle and headless use state and jupyter, never the reverse.
"""
