"""Any network as a `Backbone`: penultimate features `F`, its untouched head `C`, its preprocessing and named
layers (`backbone.py`); where networks come from (`sources.py`), safe weight loading (`checkpoints.py`).
"""
