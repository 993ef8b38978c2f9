"""Behaviour as data: the built-in set and loading JSON/TOML files."""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec
import pytest

from voxta_mock import DEFAULT_DATA, DataError, MockData, load_data


def test_default_data_has_two_characters_and_a_scenario() -> None:
    assert len(DEFAULT_DATA.characters) >= 2
    assert DEFAULT_DATA.scenarios
    assert DEFAULT_DATA.assistant.name == "Apex"


def test_json_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_bytes(msgspec.json.encode(DEFAULT_DATA))
    assert load_data(path) == DEFAULT_DATA


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_toml(tmp_path: Path) -> None:
    path = tmp_path / "d.toml"
    path.write_text('[[characters]]\nid = "c1"\nname = "Cid"\ngreeting = "Yo"\n'
                    '[[scripts]]\nkeyword = "jump"\naction = "jump"\n')
    data = load_data(path)
    assert isinstance(data, MockData)
    assert data.assistant.name == "Cid"


def test_errors_name_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('{"characters": [{"id": "a", "name": "A"}], "assistant_id": "zz"}')
    with pytest.raises(DataError, match="assistant_id"):
        load_data(path)
    path.write_text('{"characters": [{"id": "a", "name": "A", "colour": 1}]}')
    with pytest.raises(DataError, match="colour"):
        load_data(path)
    with pytest.raises(DataError, match="cannot read"):
        load_data(tmp_path / "missing.json")
