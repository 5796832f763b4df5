"""Where a character of a scalar's value was written in the file.

CEL and template errors come with an offset into the value the loader built,
but a value is not a slice of the file: quotes, escapes (`\\"`), the header of
a block scalar (`|`, `>`), indentation and line folding all sit between the two.
So we re-scan the raw text from the scalar's start, matching the value's
characters in order and skipping only what YAML itself removes; where the two
stop matching (a construct this scan does not model), positions fall back to
the last character matched, never to a wrong line.
"""

from __future__ import annotations

import bisect

__all__ = ["ScalarText", "line_starts"]

Position = tuple[int, int]

_BREAKS = "\r\n\x85\u2028\u2029"  # the line breaks YAML (and so the loader's marks) count
_BLANKS = " \t\ufeff" + _BREAKS
_BLOCK = ("|", ">")
_PROPERTY = "&!"  # an anchor or a tag before the value
# fmt: off
_ESCAPES = {
    "0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v", "f": "\f",
    "r": "\r", "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\", "N": "\x85",
    "_": "\xa0", "L": "\u2028", "P": "\u2029",
}
# fmt: on
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


def line_starts(text: str) -> list[int]:
    """Offsets where lines start, breaking lines as YAML does (`\\r\\n` is one break)."""
    starts = [0]
    for index, char in enumerate(text):
        if char in _BREAKS and not (char == "\r" and text.startswith("\n", index + 1)):
            starts.append(index + 1)
    return starts


class ScalarText:
    """The raw text of one scalar, mapped to the value it holds."""

    def __init__(self, text: str, start: Position, value: str) -> None:
        self._text = text
        self._starts = line_starts(text)
        self._bom = 1 if text.startswith("\ufeff") else 0  # marks do not count it
        begin, style = self._content(self._offset(start))
        self._begin = begin
        self._marks = _align(text, begin, value, style)

    def position(self, offset: int) -> Position:
        """File (line, column) of `value[offset]`; `len(value)` is just past its end."""
        if not self._marks:
            return self._position(self._begin)
        return self._position(self._marks[min(max(offset, 0), len(self._marks) - 1)])

    def _offset(self, position: Position) -> int:
        line, column = position
        line = min(max(line, 1), len(self._starts))
        bom = self._bom if line == 1 else 0
        return min(self._starts[line - 1] + column - 1 + bom, len(self._text))

    def _position(self, offset: int) -> Position:
        line = bisect.bisect_right(self._starts, offset)
        bom = self._bom if line == 1 else 0
        return line, offset - self._starts[line - 1] + 1 - bom

    def _content(self, offset: int) -> tuple[int, str]:
        """Where the value's first character may be, and the scalar's style."""
        text = self._text
        while offset < len(text) and text[offset] in _PROPERTY:
            while offset < len(text) and text[offset] not in _BLANKS:
                offset += 1
            while offset < len(text) and text[offset] in _BLANKS:
                offset += 1
        lead = text[offset : offset + 1]
        if lead in ('"', "'"):
            return offset + 1, lead
        if lead in ("|", ">"):
            line = bisect.bisect_right(self._starts, offset)
            return (self._starts[line] if line < len(self._starts) else len(text)), lead
        return offset, ""


def _align(text: str, begin: int, value: str, style: str) -> list[int]:
    """File offsets of each character of `value`, plus one just past the last.

    Stops early (returning what matched) where text and value disagree.
    """
    marks: list[int] = []
    offset, width = begin, 0
    for char in value:
        found = _find(text, offset, char, style)
        if found is None:
            break
        at, width = found
        marks.append(at)
        offset = at + width
    if marks:
        marks.append(marks[-1] + width)
    return marks


def _find(text: str, offset: int, char: str, style: str) -> tuple[int, int] | None:
    """The next place that writes `char`, and how many characters write it.

    Blanks between are what YAML removes (indentation, folded line breaks).
    """
    while offset < len(text):
        if style not in _BLOCK and offset and text[offset - 1] in _BREAKS:
            offset = _skip_indentation(text, offset)  # never content in flow scalars
        if offset >= len(text):
            return None
        here = text[offset]
        if style == '"' and here == "\\":
            decoded, width = _escape(text, offset)
            if decoded == "":  # an escaped line break joins lines
                offset += width
                continue
            return (offset, width) if decoded == char else None
        if style in ('"', "'") and here == style:  # closing quote, or `''` for `'`
            is_pair = style == "'" and text.startswith("''", offset)
            return (offset, 2) if is_pair and char == "'" else None
        if here == char:
            return offset, 1
        if here in _BREAKS and char in " \n":  # a folded or kept line break
            return offset, 2 if text.startswith("\r\n", offset) else 1
        if here not in _BLANKS:
            return None
        offset += 1
    return None


def _skip_indentation(text: str, offset: int) -> int:
    while offset < len(text) and text[offset] in " \t":
        offset += 1
    return offset


def _escape(text: str, offset: int) -> tuple[str | None, int]:
    """The character a double-quoted escape at `offset` stands for, and its width."""
    code = text[offset + 1 : offset + 2]
    if code in _HEX_ESCAPES:
        digits = text[offset + 2 : offset + 2 + _HEX_ESCAPES[code]]
        try:
            return chr(int(digits, 16)), 2 + len(digits)
        except ValueError:
            return None, 1
    if code and code in _BREAKS:
        return "", 3 if text.startswith("\r\n", offset + 1) else 2
    return _ESCAPES.get(code), 2
