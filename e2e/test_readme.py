"""The README's example outputs are what the examples print today (scripts/readme_outputs.py
reruns each against a local SeaweedFS, on real PyPI artifacts, and compares every block)."""

from __future__ import annotations

import readme_outputs


def test_every_example_output_in_the_readme_is_what_a_fresh_run_prints() -> None:
    text = readme_outputs.README.read_text()
    names = list(readme_outputs.blocks(text))
    assert set(names) == set(readme_outputs.EXAMPLES), names  # none unmarked, none missing
    diff = readme_outputs.differences(text, readme_outputs.generate(names))
    assert not diff, "README drifted (python scripts/readme_outputs.py --write):\n" + "\n".join(
        diff
    )
