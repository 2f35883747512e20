"""The paper's figures, as data: Table 1 and the Venn counts its text quotes (`seed/inception-resnet-equivalence.txt`,
section 5 and Fig. 5), each with the words it stands on. One place for these numbers: the report, the docs and the
tests read them here.

The paper counts images of the 50,000 ILSVRC2012 validation images. Its percentages are rounded, and two of them
are not its counts' own: Inception-v4's "80.2" is the published figure of Szegedy et al. (2017), while its count
40,037 is 80.07% (the text says "Our Inception-v4 model achieved 80.1%"); and the losses are differences of the
rounded percentages (4.5 = 80.2 - 75.7; the counts give 4.34). featswap compares counts, as fractions of the images
evaluated; the stated percentages and losses are kept beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Images the paper evaluates on: the ILSVRC2012 validation set.
PAPER_TOTAL = 50_000


@dataclass(frozen=True)
class Figure:
    """One figure of the paper: `key` (what featswap's run gives for it, see `featswap.paper.report`), the row's
    label, the paper's `count` of `PAPER_TOTAL` images, the percentage and loss it states (None where it states
    none), and the words of the paper it comes from."""

    key: str
    label: str
    count: int
    stated_percent: float | None
    stated_loss: float | None
    quote: str

    @property
    def fraction(self) -> float:
        """The count as a fraction of the 50,000 images (0.80074 for 40,037)."""
        return self.count / PAPER_TOTAL


#: Table 1, row by row, then the two Venn counts of section 5 (the I -> R map's Fig. 5).
FIGURES: tuple[Figure, ...] = (
    Figure(
        "inception_native",
        "Inception-v4 (I -> I)",
        40_037,
        80.2,
        None,
        "Inception-v4\t(I \\rightarrow I)\t40,037\t80.2",
    ),
    Figure(
        "resnet_native", "ResNet-v2 152 (R -> R)", 39_022, 78.0, None, "ResNet-v2 152\t(R \\rightarrow R)\t39,022\t78.0"
    ),
    Figure(
        "inception_to_resnet",
        "Inception-v4 to ResNet-v2 152 (I -> R)",
        39_686,
        79.4,
        -1.4,
        "Inception-v4 to ResNet-v2 152\t(I \\rightarrow R)\t39,686\t79.4\t\u22121.4",
    ),
    Figure(
        "resnet_to_inception",
        "ResNet-v2 152 to Inception-v4 (R -> I)",
        37_866,
        75.7,
        4.5,
        "ResNet-v2 152 to Inception-v4\t(R \\rightarrow I)\t37,866\t75.7\t4.5",
    ),
    Figure(
        "resnet_misses",
        "images ResNet misclassifies",
        10_978,
        None,
        None,
        "for the 10,978 images that ResNet misclassifies",
    ),
    Figure(
        "fixed_by_inception_features",
        "of those, fixed by mapped Inception features (I -> R)",
        2_960,
        None,
        None,
        "replacing ResNet\u2019s features with mapped Inception features \u201cfixes\u201d 2,960 of them",
    ),
)

#: The rows that are Table 1's (the others are the Venn counts of the text).
TABLE_1 = FIGURES[:4]


def figure(key: str) -> Figure:
    """The figure with this key."""
    return next(f for f in FIGURES if f.key == key)


#: The paper's recipe for the maps, as `featswap.mapping.solvers.paper.PaperSettings` holds it by default (section
#: 4.2, footnote 1): Adam from 0.1, decay (1 - 1e-5) per iteration, batches of 2048, 100,000 iterations.
PAPER_ITERATIONS = 100_000

#: Google's checkpoints of the two networks (TF-slim's model zoo), their tarballs and the file each unpacks to.
CHECKPOINTS = {
    "inception_v4": (
        "http://download.tensorflow.org/models/inception_v4_2016_09_09.tar.gz",
        "inception_v4.ckpt",
    ),
    "resnet_v2_152": (
        "http://download.tensorflow.org/models/resnet_v2_152_2017_04_14.tar.gz",
        "resnet_v2_152.ckpt",
    ),
}
