"""Heads of three kinds (`kinds.py`): the network's own, a zero-shot text head, a trained linear probe (`probe.py`)."""
