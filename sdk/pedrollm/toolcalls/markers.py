"""Matching a format's markers at a position of a text that may still be growing.

A marker is a short pattern of literal strings and character runs (``<function=``,
a name, ``>``). Matching answers one of three things: it matches (and where it
ends), it cannot match, or the text ends too early to tell. The last answer is what
lets a stream hold back ``<tool_ca`` until the next chunk says what it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NEED_MORE = -1
NO_MATCH = -2


@dataclass(frozen=True)
class Run:
    """A run of characters from one class, e.g. a function name or optional whitespace."""

    regex: re.Pattern[str]
    optional: bool = False


def run(char_class: str, optional: bool = False) -> Run:
    """Return a Run matching one or more (or, if optional, zero or more) of ``char_class``."""
    return Run(re.compile(f"{char_class}*"), optional)


WS = run(r"\s", optional=True)
NAME = run(r"[A-Za-z0-9_\-.]")
IDENT = run(r"[A-Za-z0-9_]")

Token = str | Run
Pattern = tuple[Token, ...]


def match_pattern(pattern: Pattern, text: str, start: int, final: bool) -> int:
    """Return where ``pattern`` ends when it matches at ``start``, else NO_MATCH or NEED_MORE.

    With ``final`` the text is complete, so a match cut short by its end is NO_MATCH.
    Answers are stable as the text grows: a match stays a match, a refusal a refusal.
    """
    pos = start
    n = len(text)
    for tok in pattern:
        if isinstance(tok, str):
            if text.startswith(tok, pos):
                pos += len(tok)
                continue
            if pos + len(tok) > n and tok.startswith(text[pos:]):
                return NO_MATCH if final else NEED_MORE
            return NO_MATCH
        m = tok.regex.match(text, pos)
        end = m.end() if m else pos
        if end == n and not final:
            # The run may go on in the next chunk, and what follows it decides.
            return NEED_MORE
        if end == pos and not tok.optional:
            return NO_MATCH
        pos = end
    return pos


def partial_suffix_start(text: str, start: int, literals: tuple[str, ...], longest: int) -> int:
    """Return the first index >= start from which the text's tail is a proper prefix of a literal.

    Returns ``len(text)`` when no tail could still grow into one of ``literals``.
    """
    n = len(text)
    for k in range(max(start, n - longest + 1), n):
        ch = text[k]
        tail = ""
        for lit in literals:
            if lit[0] != ch:
                continue
            tail = tail or text[k:]
            if len(lit) > len(tail) and lit.startswith(tail):
                return k
    return n
