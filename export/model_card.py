"""``vis2mus-eval``: the model card's evaluation (``model.evaluate``) with the live transforms.

``model/`` may import only the shared music representation, so the brightness/contrast response
(part 5) receives the feature-map edits from here: the runtime's own eq. (1) and (2)
(``live.texture.transform``), the functions the performer's faders drive.
"""

from __future__ import annotations

import sys

from live.texture.transform import brightness, contrast
from model.evaluate import main as evaluate_main

EDITS = {"brightness": brightness, "contrast": contrast}
"""Part 5's sweeps: name -> edit of feature maps ``(B, 10, 8, 29)`` by alpha."""


def main(argv: list[str] | None = None) -> int:
    """``vis2mus-eval`` with part 5 on the live transforms."""
    return evaluate_main(argv, edits=EDITS)


if __name__ == "__main__":
    sys.exit(main())
