"""The README's tour runs as written (so the documented API cannot drift from the code)."""
import re
from pathlib import Path


def test_readme_tour_runs():
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "README.md has no python block"
    assert len(blocks) == 4, "the tour, the open-engine block, the cross-validation block, the long-sweeps block"
    namespace = {}
    for i, block in enumerate(blocks):  # one namespace: the second block continues the first
        exec(compile(block, f"README.md (python block {i + 1})", "exec"), namespace)
    assert namespace["res"].history.holdout_acc.shape == (2, 3, 2, 2, 30)
    assert 0.5 < namespace["best"].metrics["test_acc"] <= 1.0
    assert namespace["res_w"].shape == (2, 2) and bool(namespace["r"].stopped)
    assert namespace["out"].final["holdout_acc"].shape == (3,)
    assert namespace["info"].process_count == 1 and namespace["again"].shape == (1, 2, 2, 2)
    assert namespace["local"].train.X.shape == (400, 20) and namespace["res_local"].shape == (1, 1)
    assert namespace["ours"].C_ == namespace["theirs"].C_ and namespace["ours"].scores_.shape == (5, 1, 10)
    assert namespace["cvr"].shape == (3, 2, 2) and namespace["cvr"].refit is not None
    assert namespace["path"].result.params["W"].shape == (1, 20, 20)
