"""botocore's data files parsed once per test process (tests/botocore_models.py), against botocore's own parse."""
from __future__ import annotations

import boto3
import pytest
from botocore import loaders
from botocore.loaders import JSONFileLoader, Loader

from . import botocore_models

FILES = ["endpoints", "partitions", "dynamodb/2012-08-10/service-2", "sns/2010-03-31/service-2",
         "pinpoint-sms-voice-v2/2022-03-31/service-2", "sqs/2012-11-05/service-2"]


def test_the_test_process_parses_each_file_once():
    assert JSONFileLoader._load_file is botocore_models.load_file_once


@pytest.mark.parametrize("name", FILES)
def test_a_file_is_what_botocore_parses(name):
    path = next(f"{base}/{name}" for base in Loader().search_paths if JSONFileLoader().exists(f"{base}/{name}"))
    loader = JSONFileLoader()
    # botocore's own parse, by the first of its file endings that is there (.json, .json.gz)
    theirs = next(data for ending, open_method in loaders._JSON_OPEN_METHODS.items()
                  if (data := botocore_models.BOTOCORE_LOAD_FILE(loader, path + ending, open_method)) is not None)
    assert theirs
    assert loader.load_file(path) == theirs
    assert loader.load_file(path) == theirs  # the second time, as it was parsed


def test_new_sessions_parse_nothing_again(monkeypatch):
    parsed, botocore_s = [], botocore_models.BOTOCORE_LOAD_FILE

    def counting(self, full_path, open_method):
        data = botocore_s(self, full_path, open_method)
        if data is not None:  # a file that is there (botocore tries each ending)
            parsed.append(full_path)
        return data

    monkeypatch.setattr(botocore_models, "BOTOCORE_LOAD_FILE", counting)
    monkeypatch.setattr(botocore_models, "_parsed", {})
    for _ in range(3):
        boto3.session.Session(region_name="us-east-1").client("dynamodb")
    assert parsed and len(parsed) == len(set(parsed))  # each file parsed once, however many sessions


def test_a_file_that_changes_is_parsed_again(tmp_path):
    model = tmp_path / "model.json"
    model.write_text('{"a": 1}')
    loader = JSONFileLoader()
    assert loader.load_file(str(tmp_path / "model")) == {"a": 1}
    model.write_text('{"a": 22}')
    assert loader.load_file(str(tmp_path / "model")) == {"a": 22}
    assert loader.load_file(str(tmp_path / "missing")) is None
