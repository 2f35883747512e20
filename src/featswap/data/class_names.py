"""`--class-names FILE`: a head's classes in order, one name per line, so that labelled images can name which of
the head's outputs each of their classes is.

A folder of some of a head's classes (2 of CIFAR-10's 10, say) is then labelled by the index of its folder's name
in the file, and scored over the classes present, as ImageNet subsets are (`featswap.evaluation.swap.
scored_classes`). The file is read and checked here, where it enters: a name given twice, a blank line, or a
class of the images that the file does not name is an error naming the line or the class.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from featswap.errors import DataError, SpecError

if TYPE_CHECKING:
    from featswap.data.collections import Collection


def read_class_names(path: str | Path) -> tuple[str, ...]:
    """The class names of `path`, in order: line k names the head's output k. Surrounding spaces are dropped; a
    missing or unreadable file, an empty one, a blank line or a name on two lines is a SpecError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SpecError(
            f"--class-names {path} does not exist; give a text file with one class name per line."
        ) from None
    except IsADirectoryError:
        raise SpecError(
            f"--class-names {path} is a directory; give a text file with one class name per line."
        ) from None
    except UnicodeDecodeError:
        raise SpecError(f"--class-names {path} is not a text file (not valid UTF-8).") from None
    except OSError as err:
        raise SpecError(f"Cannot read --class-names {path}: {err.strerror or err}.") from None
    names = [line.strip() for line in text.splitlines()]
    while names and not names[-1]:  # blank lines at the very end are only the file's last line breaks
        names.pop()
    if not names:
        raise SpecError(f"--class-names {path} names no class; give one class name per line, in the head's order.")
    for k, name in enumerate(names, 1):
        if not name:
            raise SpecError(
                f"Line {k} of --class-names {path} is blank; line k names the head's output k, so a blank line "
                "would shift every later class. Remove it (or name the output)."
            )
    seen: dict[str, int] = {}
    for k, name in enumerate(names, 1):
        if name in seen:
            raise SpecError(
                f"--class-names {path} names {name!r} twice (lines {seen[name]} and {k}); each of the head's outputs "
                "needs its own name."
            )
        seen[name] = k
    return tuple(names)


def with_class_names(collection: Collection, names: tuple[str, ...], path: str | Path) -> Collection:
    """`collection` labelled by `names` (the head's classes in order): each image's label becomes the index of its
    class's name in `names`, and the label space is `names`. Unlabelled collections are returned as they are; a
    class of the images that `names` does not hold is a DataError naming it."""
    if collection.labels is None or collection.classes is None:
        return collection
    index = {name: k for k, name in enumerate(names)}
    present = [collection.classes[k] for k in np.unique(collection.labels)]
    unknown = [c for c in present if c not in index]
    if unknown:
        listed = ", ".join(repr(c) for c in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise DataError(
            f"{collection.spec} has images of {len(unknown)} class(es) that --class-names {path} does not name: "
            f"{listed}; every class folder must be one of the head's classes, named as in the file."
        )
    mapping = np.asarray([index.get(c, -1) for c in collection.classes], dtype=np.int64)
    return replace(collection, labels=mapping[collection.labels], classes=names)
