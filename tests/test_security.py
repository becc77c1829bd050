"""Values from params.yaml never reach a shell unquoted; no pickled code is ever loaded.

Hostile strings in a run (experiment) name, a TLP and a language are refused by validation
with a one-line error naming the key; a hostile *path* (a preset in a folder whose name is a
shell injection) is legal, so it is quoted: the jobs run and the injected command never does.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from pipeline.config import read_yaml, validate
from pipeline.errors import ConfigError
from tests.e2e import make_project, snakemake

REPO = Path(__file__).resolve().parent.parent
HOSTILE = "x'; touch PWNED; echo '$(touch PWNED2)`touch PWNED3`"


@pytest.mark.parametrize(
    "mutate, key",
    [
        (
            lambda c: c["experiments"].__setitem__(HOSTILE, {"method": "mtl", "steps": 2}),
            "experiments",
        ),
        (lambda c: c["tlps"].append(f"nli/{HOSTILE}"), "tlps.8"),
        (lambda c: c.__setitem__("zero_shot_langs", [HOSTILE]), "zero_shot_langs"),
        (
            lambda c: c["experiments"]["mtl"].__setitem__("tlps", [f"ner/{HOSTILE}"]),
            "experiments.mtl.tlps",
        ),
    ],
    ids=["run-name", "tlp", "language", "experiment-tlp"],
)
def test_hostile_names_are_refused_naming_the_key(mutate, key):
    cfg = copy.deepcopy(read_yaml(REPO / "params.yaml"))
    mutate(cfg)
    with pytest.raises(ConfigError) as e:
        validate(cfg, where="params.yaml")
    msg = str(e.value)
    assert msg.startswith(f"params.yaml: {key}") and "\n" not in msg, msg


@pytest.mark.e2e
def test_hostile_preset_path_is_quoted_in_every_job(tmp_path):
    proj = make_project(tmp_path / "p", {"toy2d": None})
    folder = proj / "presets" / HOSTILE
    folder.mkdir(parents=True)
    preset = folder / "p.yaml"
    preset.write_text(yaml.safe_dump({"features": {"max_length": 40}}))
    rel = str(preset.relative_to(proj))
    res = snakemake(proj, "data/plan.json", "models/encoder", "-p", "--configfile", rel)
    assert not list(proj.rglob("PWNED*")) and not list(Path.cwd().glob("PWNED*"))
    assert (proj / "data/plan.json").exists() and (proj / "models/encoder").is_dir()
    assert "'" in res.stdout + res.stderr  # the commands carry the quoted path


def test_no_unsafe_loading_in_the_code():
    """Every torch.load says weights_only=True; nothing trusts remote code."""
    for f in (REPO / "pipeline").rglob("*.py"):
        text = f.read_text()
        for m in re.finditer(r"torch\.load\(([^)]*)\)", text):
            assert "weights_only=True" in m.group(1), f"{f}: {m.group(0)}"
        assert "trust_remote_code=True" not in text, f
