"""The composed config schema and the shared checks (workflow_scripts/core/config): each experiment owns its
section, core only merges them (the one-line errors themselves: tests/core/test_reliability.py)."""
import re
from pathlib import Path

import pytest
import yaml

from workflow_scripts.core import config as core_config
from workflow_scripts.core.config import ConfigError, validate_config
from workflow_scripts.core.config.checks import missing_directory
from workflow_scripts.core.experiments import experiment_names

REPO = Path(__file__).resolve().parents[2]


def test_each_experiment_section_is_its_own_schema_file():
    schema = core_config._schema()
    core = yaml.safe_load((REPO / "workflow_scripts/core/config/schema.yaml").read_text())
    assert experiment_names()
    for name in experiment_names():
        own = yaml.safe_load((REPO / f"workflow_scripts/{name}/schema.yaml").read_text())
        defs = own.pop("$defs", {})
        assert schema["properties"][name] == own
        assert all(schema["$defs"][d] == v for d, v in defs.items())
        assert name in schema["required"] and name not in core["properties"]
    # core's own keys stay, and nothing else is added
    assert set(schema["properties"]) == set(core["properties"]) | set(experiment_names())
    assert schema["required"] == core["required"] + experiment_names()


def test_core_config_names_no_experiment():
    pattern = re.compile(r"\b(" + "|".join(experiment_names()) + r")\b")
    for path in (REPO / "workflow_scripts/core/config").iterdir():
        if path.suffix in (".py", ".yaml"):
            assert not pattern.search(path.read_text()), path


def test_a_config_that_passed_is_not_validated_again(tmp_path, monkeypatch):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    assert core_config._schema_errors(config, tmp_path) == []
    assert len(list((tmp_path / "dro_rebel_valid_configs").iterdir())) == 1
    import jsonschema

    monkeypatch.setattr(jsonschema, "Draft202012Validator", None)          # any use would fail
    assert core_config._schema_errors(config, tmp_path) == []
    config["seeds"] = [0, 1.5]                                             # a new config: a new digest
    monkeypatch.undo()
    assert core_config._schema_errors(config, tmp_path) == ["config key 'seeds[1]' must be of type integer, got 1.5"]
    assert len(list((tmp_path / "dro_rebel_valid_configs").iterdir())) == 1


def test_errors_of_two_experiments_come_in_experiment_name_order():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["emotion"]["mixture"]["objectives"] = ["fear", "fear"]
    config["armorm"]["training_pairs"] = [{"objectives": ["ArmoRM", "ArmoRM"]}]
    with pytest.raises(ConfigError, match=r"^config key 'armorm\.training_pairs\[0\]\.objectives' .* \(and 1 more problem"):
        validate_config(config)


def test_missing_directory(tmp_path):
    assert not missing_directory(str(tmp_path))                      # a directory
    assert not missing_directory("dair-ai/emotion")                  # could be a hub id: the job downloads it
    assert missing_directory("./no/such/dir")                        # written as a path
    assert missing_directory("~/no-such-dir-here")
    assert missing_directory("not a hub id")
    assert not missing_directory("data.jsonl")                       # a hub id by form...
    assert missing_directory("data.jsonl", (".jsonl",))              # ...unless data files are meant
