"""Ray: the optional engine for clusters (the only package that imports ray)."""
