"""Everything a run writes and reads back: `metrics_json.py` (and `metrics.schema.json`, its JSON Schema),
`predictions.py`, `report.py` and `stitch_report.py` (report.md and figures), `paths.py` (file names).
"""
