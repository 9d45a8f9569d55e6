"""Data tooling: CSV -> Parquet compaction (`nbenv data compact`). The demo's synthetic generator lives
in the repository's `demo/`, outside the installed package."""
