"""Environment specs: models, loading, locating errors in TOML."""
