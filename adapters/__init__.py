"""Storage adapters, importable as ``fairproc.adapters.<name>``."""
