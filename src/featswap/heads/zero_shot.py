"""What a zero-shot text head is built from: the class names and the prompt templates (`--templates FILE`).

Class names: CLIP's standard ImageNet names for an ImageNet collection (its classes are the 1,000 synsets), else
the collection's class names (its folder names, or those of `--class-names FILE`), underscores read as spaces.
Templates: OpenAI's 80 ImageNet prompts for ImageNet, else "a photo of a {}.", or one per line of `--templates`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from featswap.errors import SpecError

#: The prompt for collections other than ImageNet.
PHOTO_TEMPLATE = "a photo of a {}."


def read_templates(path: str | Path) -> tuple[str, ...]:
    """The templates of `path`, one per line, each with one `{}` where the class name goes (blank lines skipped)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SpecError(f"--templates {path} does not exist; give a text file with one prompt per line.") from None
    except IsADirectoryError:
        raise SpecError(f"--templates {path} is a directory; give a text file with one prompt per line.") from None
    except UnicodeDecodeError:
        raise SpecError(f"--templates {path} is not a text file (not valid UTF-8).") from None
    except OSError as err:
        raise SpecError(f"Cannot read --templates {path}: {err.strerror or err}.") from None
    templates = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not templates:
        raise SpecError(f"--templates {path} holds no prompt; give one per line, e.g. 'a photo of a {{}}.'.")
    for k, template in enumerate(templates, 1):
        try:
            filled = template.format("X")
        except (IndexError, KeyError, ValueError):
            filled = ""
        if template.count("{}") != 1 or filled != template.replace("{}", "X"):
            raise SpecError(
                f"Prompt {k} of --templates {path} ({template!r}) needs exactly one {{}} where the class name goes "
                "(and no other braces)."
            )
    return templates


def is_imagenet(classes: Sequence[str]) -> bool:
    """Whether `classes` are ImageNet-1k's 1,000 synsets in their standard order."""
    from featswap.data.imagenet import imagenet_synsets

    return tuple(classes) == tuple(imagenet_synsets())


def class_texts(
    classes: Sequence[str],
    templates: Sequence[str] | None,
    imagenet_names: Sequence[str],
    imagenet_templates: Sequence[str],
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`(names, templates)` of a zero-shot head for a collection of `classes` (see the module's docstring); no
    classes (no collection known, as for `featswap layers`) gives ImageNet's."""
    imagenet = not classes or is_imagenet(classes)
    names = tuple(imagenet_names) if imagenet else tuple(c.replace("_", " ") for c in classes)
    chosen = tuple(templates) if templates else tuple(imagenet_templates) if imagenet else (PHOTO_TEMPLATE,)
    return names, chosen
