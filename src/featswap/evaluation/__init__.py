"""featswap.evaluation."""
