"""`python -m featswap.cli ...`: the same as the `featswap` command."""

from featswap.cli import app

app()
