"""The policies that ship with fairproc, each a folder of TOML rule files."""
