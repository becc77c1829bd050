"""Data layer: sources, downloads, one reader per raw format, the synthetic benchmark, storage."""
