"""featswap.outputs."""
