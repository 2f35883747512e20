"""featswap.extraction."""
