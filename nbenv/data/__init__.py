"""Data tooling: a synthetic generator shaped like the seed's datasets, and CSV -> Parquet compaction."""
