"""experiments.reproduction.students.exam_students: the lecture's 20 students, and the σ values it prints."""
import numpy as np

from experiments.reproduction.students import exam_students


def test_students_shapes_and_values():
    s = exam_students()
    assert s["hours"].shape == s["passed"].shape == s["printed_probs"].shape == (20,)
    assert s["hours"][0] == 0.5 and s["hours"][-1] == 5.5 and np.all(np.diff(s["hours"]) >= 0)
    assert set(s["passed"].tolist()) == {0, 1} and s["passed"].sum() == 10  # 10 passed, 10 failed
    s["hours"][0] = 99.0  # fresh arrays: a caller cannot change the data set
    assert exam_students()["hours"][0] == 0.5


def test_printed_probabilities_come_from_one_sigmoid():
    # the seed prints σ(w0 + w1·hours) for one (w0, w1): their logits lie on a line in the hours
    s = exam_students()
    logit = np.log(s["printed_probs"] / (1 - s["printed_probs"]))
    w1, w0 = np.polyfit(s["hours"], logit, 1)
    np.testing.assert_allclose(w0 + w1 * s["hours"], logit, atol=1e-6)
    assert 1.0 < w1 < 2.0 and -5.0 < w0 < -3.0  # the seed's fit: a rise of ~1.5 logits per hour
