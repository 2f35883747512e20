"""`featswap convert`: a network's weights, loaded from whatever its family reads (Google's TF checkpoints for
`tfslim:`), written as safetensors that load without TensorFlow and give the same tensors bit for bit."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from featswap.errors import ModelError, SpecError


@dataclass(frozen=True)
class Converted:
    """What `convert` wrote: the file, its tensor count and sha256, and the source's sha256."""

    path: Path
    tensors: int
    sha256: str
    source_sha256: str


def convert(spec: str, weights: Path, out: Path) -> Converted:
    """Load `weights` into the network of `spec` and write its state dict to `out` (a new `.safetensors` file;
    an existing file is never overwritten). The file is read back and compared before returning."""
    import torch
    from safetensors.torch import load_file, save

    from featswap.backbones.sources import family_of

    if out.suffix != ".safetensors":
        raise SpecError(f"--out {out}: convert writes safetensors; give a file name ending in .safetensors.")
    if out.exists():
        raise SpecError(f"{out} already exists; convert never overwrites a file. Give a new --out path.")
    family, arg = family_of(spec)
    built = family.build(arg, num_classes=1000, pretrained=False)
    source_sha = family.load_weights(built, weights)
    state = {k: v.detach().cpu().contiguous() for k, v in built.module.state_dict().items()}
    payload = save(state, metadata={"featswap_spec": spec, "source": weights.name, "source_sha256": source_sha})
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(out, "xb") as f:  # exclusive: a file that appeared meanwhile is not replaced
            f.write(payload)
    except FileExistsError:
        raise SpecError(f"{out} already exists; convert never overwrites a file. Give a new --out path.") from None
    except OSError as err:
        raise ModelError(f"Cannot write {out}: {err.strerror or err}.") from err
    back = load_file(str(out))
    if back.keys() != state.keys() or not all(torch.equal(back[k], v) for k, v in state.items()):
        raise ModelError(f"{out} does not read back as written (a full disk?); delete it and convert again.")
    return Converted(out, len(state), hashlib.sha256(payload).hexdigest(), source_sha)
