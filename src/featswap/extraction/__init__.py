"""Running networks over a collection into the feature store: `plan.py` (which chunks are left, resumable)
and `local.py` (the in-process loop with batches that never straddle a chunk).
"""
