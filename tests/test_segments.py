import pytest

from tests.conftest import sender  # noqa: F401  (sets the path for chalicelib)
from chalicelib.core.segments import GSM7, UCS2, segment


@pytest.mark.parametrize("body, encoding, parts", [
    ("a" * 160, GSM7, 1),
    ("a" * 161, GSM7, 2),
    ("a" * 306, GSM7, 2),
    ("a" * 307, GSM7, 3),
    ("€" * 80, GSM7, 1),          # extension characters take two septets each
    ("€" * 81, GSM7, 2),
    ("a" * 152 + "€", GSM7, 1),   # 154 septets still fit in one part
    ("a" * 159 + "€", GSM7, 2),   # 161 septets: split, and the escape pair is not broken
    ("é" * 160, GSM7, 1),         # é is in the GSM-7 basic set
    ("ç" * 70, UCS2, 1),          # ç is not (only Ç is)
    ("ç" * 71, UCS2, 2),
    ("ç" * 134, UCS2, 2),
    ("ç" * 135, UCS2, 3),
    ("😀" * 35, UCS2, 1),          # a surrogate pair is two UCS-2 units
    ("😀" * 36, UCS2, 2),
])
def test_segment_counts(body, encoding, parts):
    assert segment(body) == (encoding, parts)


def test_a_surrogate_pair_is_never_split_across_parts():
    # 66 units of text then an emoji: 68 units in a split message; the emoji moves to part 2.
    body = "ç" * 66 + "😀" + "ç" * 10
    assert segment(body) == (UCS2, 2)
    assert segment("ç" * 67 + "😀" * 34) == (UCS2, 3)
