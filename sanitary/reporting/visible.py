"""Stored text made safe to show: what a sign, a site id, a rule or a file name holds was typed by someone, or
written into an imported file by anyone.

A terminal obeys the control characters in what it prints (ESC sequences retitle the window, clear the screen,
move the cursor; a carriage return or newline forges a line), and a bidi override reverses the text after it on
screen and on paper. Each such character is shown by its code instead: nothing is dropped, so what an official
reads is all that is stored, in the order it is stored. Every command that prints stored text, and the report,
use `visible`.
"""

from __future__ import annotations

import re

# C0, DEL and C1 controls; then the invisible format characters that reorder or hide text: soft hyphen, Arabic
# letter mark, Mongolian vowel separator, zero-width space, LRM/RLM, line and paragraph separators, the bidi
# embeddings and overrides, word joiner and invisible operators, the bidi isolates and deprecated format controls,
# the byte-order mark, interlinear annotations and tag characters. Zero-width (non-)joiners are left alone: Persian,
# Indic scripts and emoji need them, and they move nothing.
HIDDEN = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b\u200e\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff"
    "\ufff9-\ufffb\U000e0000-\U000e007f]"
)


def visible(text: str) -> str:
    r"""`text` with each control character shown as `\xNN` and each hidden format character as `<U+XXXX>`."""
    return HIDDEN.sub(_code, text)


def _code(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0xA0 else f"<U+{code:04X}>"
