"""The sources registry: the shipped sources.yaml is valid, and bad registries fail clearly."""

from __future__ import annotations

import copy

import pytest

from pipeline.data.sources import get_source, list_sources, load_registry, parse_registry
from pipeline.errors import ConfigError, PipelineError

GOOD = {
    "toy": {
        "kind": "url",
        "splits": ["train"],
        "languages": ["en"],
        "licence": "CC0",
        "citation": {"key": "toy2024", "title": "A toy corpus"},
        "files": [{"url": "https://example.org/d/toy.zip", "sha256": None, "extract": "zip"}],
    }
}


def with_change(path: tuple, value=None, delete: bool = False) -> dict:
    reg = copy.deepcopy(GOOD)
    node = reg
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return reg


def test_shipped_registry_lists_every_dataset_with_what_it_needs():
    names = list_sources()
    for want in (
        "xnli",
        "mnli",
        "pawsx",
        "udpos",
        "panx",
        "panx_hub",
        "squad",
        "mlqa",
        "xquad",
        "tydiqa",
        "xnli_translate_train",
        "squad_translate_train",
        "mtod",
        "marc",
        "sentipers",
        "sentiraama",
    ):
        assert want in names
    for src in load_registry().values():
        assert src.files and src.languages and src.licence and src.citation.key
        if src.kind == "url":
            assert all(f.url.startswith("https://") for f in src.files)
        if src.kind == "manual":
            assert src.instructions
    assert [f.target for f in get_source("xnli").files] == ["XNLI-1.0.zip", "XNLI-MT-1.0.zip"]
    assert get_source("xnli").files[0].dest == "XNLI-1.0"
    assert get_source("panx").alternative == "panx_hub"


def test_lang_placeholder_expands_to_one_file_per_language():
    hub = get_source("panx_hub")
    assert len(hub.revision) == 40
    assert len(hub.files) == 3 * len(hub.languages) == 120
    assert "PAN-X.sw/validation-00000-of-00001.parquet" in {f.path for f in hub.files}
    assert {f.target for f in get_source("marc").files} >= {
        "dataset_en_dev.json",
        "dataset_ja_test.json",
    }


def test_default_target_and_dest_come_from_the_url():
    (spec,) = parse_registry(GOOD)["toy"].files
    assert (spec.target, spec.dest, spec.extract, spec.sha256) == ("toy.zip", "toy", "zip", None)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ((("toy", "files", 0, "sha265"), "ab"), "toy.files[0].sha265: unknown key"),
        ((("toy", "licenses"), "MIT"), "toy.licenses: unknown key"),
        ((("toy", "files", 0, "sha256"), "ABC"), "toy.files[0].sha256: expected 64 lowercase hex"),
        ((("toy", "kind"), "ftp"), "toy.kind: expected one of url, hub, manual"),
        ((("toy", "files", 0, "extract"), "rar"), "toy.files[0].extract"),
        ((("toy", "splits"), ["validation"]), "toy.splits: unknown split 'validation'"),
        ((("toy", "tasks"), ["nerr"]), "toy.tasks: unknown task 'nerr'"),
        ((("toy", "files", 0, "dest"), "../up"), "toy.files[0].dest: expected a plain file name"),
        ((("toy", "instructions"), "click"), "toy.instructions: unknown key"),  # url kind
        ((("toy", "alternative"), "nowhere"), "toy.alternative: no entry named 'nowhere'"),
    ],
)
def test_bad_values_raise_config_error_naming_entry_and_key(change, needle):
    with pytest.raises(ConfigError) as e:
        parse_registry(with_change(*change))
    assert str(e.value).startswith(needle)


@pytest.mark.parametrize("key", ["licence", "citation", "files", "kind"])
def test_missing_field_raises_config_error(key):
    with pytest.raises(ConfigError, match=rf"^toy\.{key}: missing required key"):
        parse_registry(with_change(("toy", key), delete=True))


def test_kind_specific_requirements():
    manual = with_change(("toy", "kind"), "manual")
    with pytest.raises(ConfigError, match=r"toy\.files\[0\]\.url: unknown key|toy\.instructions"):
        parse_registry(manual)
    hub = with_change(("toy", "kind"), "hub")
    hub["toy"].update(repo_id="org/data", revision="main")
    hub["toy"]["files"] = [{"path": "x.parquet", "sha256": None}]
    with pytest.raises(ConfigError, match=r"^toy\.revision: expected a pinned 40-hex commit"):
        parse_registry(hub)


def test_templated_file_cannot_carry_one_digest():
    reg = with_change(("toy", "files"), [{"url": "https://e.org/{lang}.json", "sha256": "a" * 64}])
    with pytest.raises(ConfigError, match=r"toy\.files\[0\]\.sha256: a \{lang\} file"):
        parse_registry(reg)


def test_yaml_file_errors_name_the_line(tmp_path):
    bad = tmp_path / "sources.yaml"
    bad.write_text("toy:\n  kind: url\n  files: [\n")
    with pytest.raises(ConfigError, match=rf"^{bad}:\d+: invalid YAML"):
        load_registry(bad)


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(PipelineError, match="unknown dataset 'xnl'.*xnli"):
        get_source("xnl")
