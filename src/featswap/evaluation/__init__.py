"""Swapping classifiers and scoring the result: `swap.py` (native and mapped predictions, per pair),
`stats.py` (McNemar, bootstrap intervals, top-k) and `venn.py` (which of three classifiers gets each image right).
"""
