"""The lecture's toy exam data set: hours of study and pass (1) / fail (0) of 20 students, with the
probabilities σ(w0 + w1·hours) the lecture prints after its own SGD fit (which imply its weights)."""
from __future__ import annotations

import numpy as np

_HOURS = (0.50, 0.75, 1.00, 1.25, 1.50, 1.75, 1.75, 2.00, 2.25, 2.50,
          2.75, 3.00, 3.25, 3.50, 4.00, 4.25, 4.50, 4.75, 5.00, 5.50)
_PASSED = (0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1, 1)
_PRINTED_PROBS = (0.03281144, 0.04694533, 0.06674738, 0.09407764, 0.13102736, 0.17961209,
                  0.17961209, 0.24121129, 0.31580406, 0.40126557, 0.49318368, 0.58556493,
                  0.67229611, 0.74866712, 0.86263755, 0.90117058, 0.92977426, 0.95055357,
                  0.96541314, 0.98329067)


def exam_students() -> dict:
    """``{"hours": (20,) float64, "passed": (20,) int64 0/1, "printed_probs": (20,) float64}``
    (fresh arrays on each call)."""
    return {"hours": np.array(_HOURS), "passed": np.array(_PASSED), "printed_probs": np.array(_PRINTED_PROBS)}
