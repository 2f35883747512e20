"""featswap.data."""
