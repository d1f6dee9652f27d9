"""The README's tour runs as written (so the documented API cannot drift from the code)."""
import re
from pathlib import Path


def test_readme_tour_runs():
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "README.md has no python block"
    namespace = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert namespace["res"].history.holdout_acc.shape == (2, 3, 2, 2, 30)
    assert 0.5 < namespace["best"].metrics["test_acc"] <= 1.0
