"""featswap.backbones."""
