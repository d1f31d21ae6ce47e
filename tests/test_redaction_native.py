"""The one-pass needle scanner (Hyperscan) and its agreement with the regex plan."""

from __future__ import annotations

import os

import pytest

from aitel.redaction import Redactor
from aitel.redaction._native import NeedleScanner, hyperscan, needle_scanner
from aitel.redaction.keys import CREDENTIAL_WORDS
from aitel.redaction.processor import _nothing_to_find

from .test_redaction_fast_path import corpus_texts, place, placements, traced_packet


@pytest.fixture(autouse=True)
def _require_hyperscan() -> None:
    if hyperscan is None:
        if os.environ.get("CI"):  # it is a dependency on CI's platform: its absence is a failure
            pytest.fail("hyperscan is not installed")
        pytest.skip("hyperscan has no wheel for this platform; the regex plan is tested elsewhere")


def test_finds_needles_case_sensitively_or_not() -> None:
    scanner = NeedleScanner([(False, "sk-"), (True, "token")])
    assert scanner.could_match(b'{"a":"my sk-abc"}')
    assert not scanner.could_match(b'{"a":"my SK-abc"}')
    assert scanner.could_match(b'{"a":"Max TOKENS"}')
    assert not scanner.could_match(b'{"a":"a tok en"}')


def test_check_gets_the_byte_index_of_each_occurrence_until_one_counts() -> None:
    data = '{"ü€":"tóken Token tOKEN token"}'.encode()
    seen: list[int] = []

    def check(text: bytes, index: int) -> bool:
        assert text is data
        seen.append(index)
        return len(seen) == 2

    assert NeedleScanner([(True, "token")]).could_match(data, check)
    assert [data[i : i + 5] for i in seen] == [b"Token", b"tOKEN"]  # not "tóken"; stops at 2


def test_a_rejecting_check_means_no_match() -> None:
    scanner = NeedleScanner([(True, "key")])
    assert not scanner.could_match(b'["keyboard", "monkey"]', lambda text, index: False)


def test_a_check_that_raises_counts_as_a_match() -> None:
    def broken(text: bytes, index: int) -> bool:
        raise RuntimeError("boom")

    assert NeedleScanner([(True, "key")]).could_match(b'"key"', broken) is True


def test_the_kelvin_sign_is_left_to_the_regex_plan() -> None:
    """``"\u212a".lower() == "k"``: only the regex plan, on the lower-cased text, sees it."""
    assert NeedleScanner([(True, "key")]).could_match('"\u212aey"'.encode()) is None


def test_needles_it_cannot_compile_fall_back() -> None:
    assert needle_scanner([(False, "ß-")]) is None
    assert needle_scanner([]) is None


def test_native_and_regex_verdicts_agree_on_every_corpus_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Same packets, same verdicts, whether Hyperscan or the regex plan finds the needles."""
    redactor = Redactor("secrets")
    base = traced_packet()
    packets = [
        place(base, **step_data)
        for text in [*corpus_texts(), *KELVIN]
        for _, step_data in placements(text)
    ]
    native = [_nothing_to_find(redactor, packet) for packet in packets]
    with monkeypatch.context() as m:
        m.setattr(NeedleScanner, "could_match", lambda *args: None)  # "cannot tell": regex plan
        regex = [_nothing_to_find(redactor, packet) for packet in packets]
    assert native == regex
    assert 1_000 < sum(native) < len(native) - 1_000  # both verdicts are common


KELVIN = ["api_\u212aey", "to\u212aen: abc", "\u212aey \u212aey", "\u212a"]


def test_the_pre_check_scans_packets_natively() -> None:
    redactor = Redactor("secrets")
    assert _nothing_to_find(redactor, traced_packet())
    assert redactor._engine._scanners[CREDENTIAL_WORDS] is not None
