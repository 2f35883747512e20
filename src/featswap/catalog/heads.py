"""How a model's head is chosen (`--head`, a model's `head` in a config); the kinds of head it yields are
`featswap.heads.kinds`."""

from __future__ import annotations

#: `--head`: the network's own (or zero-shot) head when it has one, else a probe; its own; always a probe.
HEAD_MODES = ("auto", "own", "probe")
