"""`featswap paper`: the paper's whole experiment (Table 1 and its Venn counts) with the paper's settings, and its
figures beside featswap's.

```python
from pathlib import Path
from featswap.paper import paper_config, run_paper

config = paper_config(Path("/data/imagenet"), Path("runs/paper"), checkpoints=Path("/data/ckpt"))
paper = run_paper(config)          # = `featswap paper /data/imagenet --checkpoints /data/ckpt --out runs/paper`
```

`setup.py` builds the run's config (the experiment runs it like any other), `figures.py` holds the paper's numbers,
`report.py` sets them beside featswap's (OUT/paper.json, OUT/paper.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from featswap.config import RunConfig
from featswap.paper.setup import PaperSide, paper_config

__all__ = ["PaperSide", "paper_config", "run_paper"]


def run_paper(config: RunConfig, quiet: bool = False) -> dict[str, Any]:
    """Run the paper's experiment that `paper_config` built (models: the Inception side, then the ResNet side) and
    write OUT/paper.json and OUT/paper.md beside the run's usual outputs; returns paper.json's content. A run
    interrupted during extraction resumes where it stopped when started again with the same OUT (the feature store
    keeps finished chunks)."""
    from featswap.experiment import Experiment
    from featswap.paper.report import comparison, write_comparison

    experiment = Experiment(config, quiet=quiet)
    metrics = experiment.run()
    inception, resnet = (m.name or "" for m in experiment.config.models)
    evaluation = experiment.config.evaluation
    paper = comparison(metrics, inception, resnet, evaluation.n_boot, evaluation.seed)
    out = Path(experiment.config.out or ".")
    write_comparison(out, paper)
    experiment.finish(out)
    return paper
