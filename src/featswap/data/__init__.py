"""Image collections a run reads: `collections.py` (the `digits`, `images:`, `imagefolder:` and `imagenet:` specs),
`decode.py` (PIL modes, bad images), `folders.py` (walking image trees) and `imagenet.py` (its layouts and labels).
"""
