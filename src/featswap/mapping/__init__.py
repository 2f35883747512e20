"""featswap.mapping."""
