"""Gaps a mutation run (mutmut 3.8.1) found in values.py: the false words of as_bool, the
default and explicit `n` of did_you_mean, and suggestion's empty prefix."""

from __future__ import annotations

import pytest

from lorakit import values


@pytest.mark.parametrize("raw", ["no", "false", "f", "n", "0", " NO ", "False", 0, False])
def test_as_bool_reads_the_false_words_as_false(raw):
    assert values.as_bool(raw) is False


@pytest.mark.parametrize("raw", ["yes", "true", "t", "y", "1", " Yes ", 1, True])
def test_as_bool_reads_the_true_words_as_true(raw):
    assert values.as_bool(raw) is True


@pytest.mark.parametrize("raw", ["maybe", "", "2", "nope", "off", 2, None, [], {}])
def test_as_bool_refuses_anything_else(raw):
    assert values.as_bool(raw) is None


def test_did_you_mean_gives_one_name_by_default():
    assert values.did_you_mean("lora_rnak", ["lora_rank", "lora_rankk", "lora_ran"]) == ["lora_rank"]


def test_did_you_mean_honours_n():
    choices = ["lora_rank", "lora_rankk", "lora_ran", "lora_rak"]
    assert values.did_you_mean("lora_rnak", choices, n=1) == ["lora_rak"]
    assert values.did_you_mean("lora_rnak", choices, n=10) == ["lora_rak", "lora_rank", "lora_rankk", "lora_ran"]


def test_suggestion_is_empty_without_a_close_name():
    assert values.suggestion("zzzz", ["lora_rank"]) == ""
    assert values.suggestion("lora_rnak", ["lora_rank"]) == "did you mean 'lora_rank'? "


@pytest.mark.parametrize("raw, expected", [
    (1, 1), (65535, 65535), ("8080", 8080), (29500.0, 29500), (" 443 ", 443),
    (0, None), (-1, None), (65536, None), ("port", None), (True, None), (None, None), (80.5, None),
])
def test_as_port_is_a_tcp_port_or_none(raw, expected):
    assert values.as_port(raw) == expected
