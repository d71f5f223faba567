import hypothesis
import pytest
from hypothesis import strategies as st

from tests.conftest import sender  # noqa: F401  (sets the path for chalicelib)
from chalicelib.core.segments import GSM7, GSM7_BASIC, GSM7_EXTENSION, UCS2, _pack, segment


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


def counted(body: str) -> tuple[str, int]:
    """The parts a body takes, from each character's units one by one (``_pack``: no character split)."""
    gsm7 = all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in body)
    units = [2 if (ch in GSM7_EXTENSION if gsm7 else ord(ch) > 0xFFFF) else 1 for ch in body]
    return (GSM7, _pack(units, 160, 153)) if gsm7 else (UCS2, _pack(units, 70, 67))


# Bodies of every kind: GSM-7 basic, with extension characters, other letters of the BMP, emoji; around the
# lengths where a part ends.
BODIES = st.text(st.sampled_from(sorted(GSM7_BASIC)[:20] + sorted(GSM7_EXTENSION) + ["ç", "ж", "中", "😀", "𝄞"])
                 | st.characters(), max_size=500)


@hypothesis.settings(max_examples=1500, deadline=None, database=None)
@hypothesis.given(BODIES | st.builds(lambda a, b: a * b, st.sampled_from(["a", "€", "ç", "😀", "a€"]),
                                     st.integers(min_value=0, max_value=320)))
def test_segment_counts_as_character_by_character_counting_does(body):
    assert segment(body) == counted(body)
