"""README's "Faults and bad input, tried" table: every row names tests that exist.

The table promises that each row is a test; a renamed or deleted test would leave a row that
no longer is. `file.py::test` names a test of tests/file.py, `::test` one of the row's previous
file, and a bare `file.py` a whole test file.
"""

from __future__ import annotations

import re

from tests.conftest import REPO

SECTION = "## Faults and bad input, tried"


def rows() -> list[str]:
    text = (REPO / "README.md").read_text("utf-8")
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return [ln for ln in body.splitlines() if ln.startswith("| ") and not ln.startswith("| input")]


def test_every_row_names_existing_tests():
    table = rows()
    assert len(table) >= 10
    for row in table:
        cell = row.rstrip().rstrip("|").rsplit("|", 1)[1]
        refs = re.findall(r"`([\w.]*::\w+|\w+\.py)`", cell)
        assert refs, f"no test named in: {row}"
        current = None
        for ref in refs:
            file, _, name = ref.partition("::")
            current = file or current
            path = REPO / "tests" / current
            assert path.exists(), f"{row}: tests/{current} does not exist"
            if name:
                assert re.search(rf"^def {name}\(", path.read_text("utf-8"), re.M), (
                    f"{row}: {current}::{name} is not a test"
                )
