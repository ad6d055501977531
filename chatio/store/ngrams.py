"""Search terms as n-grams: what a store indexes for a message and what a query must find there.

MongoDB's text index splits words at spaces and has no tokenizer for Korean, Japanese or Chinese, and
matches whole words only. chatio indexes *grams* instead, the same in every store:

* the text is lower-cased and split into words (runs of letters, digits and ``_``), and each word into
  runs of one kind: **CJK** (Hangul, kana, Han) or **other** (Latin, Cyrillic, digits, ...), so that
  ``chatio서버`` is ``chatio`` and ``서버``;
* a CJK run gives every character and every pair of neighbouring characters (bigrams): ``날씨가`` gives
  ``날 씨 가 날씨 씨가``. Korean particles and Japanese or Chinese without spaces are found inside words;
* any other run gives its prefixes up to :data:`PREFIX_MAX` characters (edge n-grams): ``world`` gives
  ``w wo wor worl world``. A word is found by its beginning (``wor``), as people type.

A query's words are split the same way into *terms*; a message matches when it holds every term: each
CJK term as a substring anywhere (its grams narrow the candidates, :func:`Plan.checks` confirms the
order of longer ones), each other term as the beginning of a word. Scores favour messages the query
makes up more of: query grams / message grams.
"""

from __future__ import annotations

import dataclasses
import re
from array import array
from typing import Final

#: Longest prefix indexed for a non-CJK word; a longer term is found by its first PREFIX_MAX characters
#: and confirmed by :attr:`Plan.checks`.
PREFIX_MAX: Final = 12
#: Most terms a query may have; more are ignored.
TERMS_MAX: Final = 16
#: Most grams a query looks up; a long CJK term is confirmed by its check past them.
QUERY_GRAMS_MAX: Final = 32

_WORD: Final = re.compile(r"\w+")
_CJK_RANGES: Final = (
    "\u1100-\u11ff"  # Hangul Jamo
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3130-\u318f"  # Hangul Compatibility Jamo
    "\u31f0-\u31ff"  # Katakana Phonetic Extensions
    "\u3400-\u4dbf"  # CJK Extension A
    "\u4e00-\u9fff"  # CJK Unified Ideographs
    "\ua960-\ua97f"  # Hangul Jamo Extended-A
    "\uac00-\ud7af"  # Hangul Syllables
    "\ud7b0-\ud7ff"  # Hangul Jamo Extended-B
    "\uf900-\ufaff"  # CJK Compatibility Ideographs
    "\uff66-\uff9f"  # Halfwidth Katakana
    "\U00020000-\U0003134f"  # CJK Extensions B to G
)
_RUN: Final = re.compile(f"[{_CJK_RANGES}]+|[^{_CJK_RANGES}]+")
_CJK: Final = re.compile(f"[{_CJK_RANGES}]")


def runs(text: str) -> list[str]:
    """The lower-cased single-kind runs of ``text``'s words (see the module docstring)."""
    # lower(), not casefold(): "ß" stays one character, as a database's lower-casing keeps it.
    return [run for word in _WORD.findall(text.lower()) for run in _RUN.findall(word)]


def is_cjk(run: str) -> bool:
    return _CJK.match(run) is not None


def grams(text: str) -> list[str]:
    """The distinct grams a store indexes for a message's ``text``, in a stable order."""
    found: dict[str, None] = {}
    for run in runs(text):
        if is_cjk(run):
            for i, char in enumerate(run):
                found[char] = None
                if i + 1 < len(run):
                    found[run[i : i + 2]] = None
        else:
            for end in range(1, min(len(run), PREFIX_MAX) + 1):
                found[run[:end]] = None
    return list(found)


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    """How to find a query: messages whose grams include all of ``grams`` and that pass ``checks``."""

    grams: list[str]
    #: CJK terms longer than a bigram (substrings of the lower-cased text), and non-CJK terms longer than
    #: PREFIX_MAX (the beginning of a word): what the grams alone cannot confirm.
    checks: list[tuple[str, bool]]

    @property
    def empty(self) -> bool:
        return not self.grams


def plan(query: str) -> Plan:
    """The :class:`Plan` of a search query; an empty one for a query without words."""
    terms = list(dict.fromkeys(runs(query)))[:TERMS_MAX]
    needed: dict[str, None] = {}
    checks: list[tuple[str, bool]] = []
    for term in terms:
        if is_cjk(term):
            pairs = [term] if len(term) == 1 else [term[i : i + 2] for i in range(len(term) - 1)]
            needed.update(dict.fromkeys(pairs))
            if len(term) > 2:
                checks.append((term, True))
        else:
            needed[term[:PREFIX_MAX]] = None
            if len(term) > PREFIX_MAX:
                checks.append((term, False))
    # Longest first: the rarest grams narrow an index scan the most.
    chosen = sorted(needed, key=len, reverse=True)[:QUERY_GRAMS_MAX]
    return Plan(chosen, checks)


def passes(plan: Plan, text: str) -> bool:
    """Whether ``text`` passes the plan's checks (its grams are assumed to match already)."""
    if not plan.checks:
        return True
    lowered = text.lower()
    words = runs(text)
    for term, anywhere in plan.checks:
        if anywhere:
            if term not in lowered:
                return False
        elif not any(word.startswith(term) for word in words):
            return False
    return True


def matches(plan: Plan, text: str) -> bool:
    """Whether a message with ``text`` is found by ``plan``: every gram, every check."""
    return scored(plan, text) is not None


def scored(plan: Plan, text: str) -> float | None:
    """``text``'s score for ``plan`` (see :func:`score`), or None when ``plan`` does not find it."""
    held = grams(text)
    if plan.empty or not set(plan.grams) <= set(held) or not passes(plan, text):
        return None
    return score(plan, len(held))


def score(plan: Plan, message_grams: int) -> float:
    """The share of a message the query makes up: more is a better match."""
    return len(plan.grams) / max(1, message_grams)


class Postings:
    """One room's gram index for the memory store: gram -> the seqs of the messages holding it, as compact
    arrays (4 bytes an entry).

    Entries go stale when a message is edited (its old grams stay), deleted, or dropped from the room's
    bounded log; :meth:`candidates` may return such seqs, and the store re-checks each candidate's current
    text with :func:`matches`. :meth:`trim` removes what was dropped, every so often, so memory stays bounded.
    """

    __slots__ = ("_by_gram", "_dropped")

    def __init__(self) -> None:
        self._by_gram: dict[str, array[int]] = {}
        self._dropped = 0

    def __len__(self) -> int:
        """Entries held, stale ones included."""
        return sum(len(found) for found in self._by_gram.values())

    def add(self, seq: int, text: str) -> None:
        for gram in grams(text):
            found = self._by_gram.get(gram)
            if found is None:
                found = self._by_gram[gram] = array("I")
            found.append(seq)

    def candidates(self, plan: Plan) -> set[int]:
        """Seqs that held every gram of ``plan`` at some point (a superset of the matches)."""
        lists = [self._by_gram.get(gram) for gram in plan.grams]
        if not lists or any(found is None for found in lists):
            return set()
        ordered = sorted((found for found in lists if found is not None), key=len)
        chosen = set(ordered[0])
        for found in ordered[1:]:
            chosen.intersection_update(found)
            if not chosen:
                break
        return chosen

    def dropped(self, first: int, held: int) -> None:
        """Messages below seq ``first`` are gone; compact once as many were dropped as the room holds."""
        self._dropped += 1
        if self._dropped >= max(1024, held):
            self.trim(first)

    def trim(self, first: int) -> None:
        for gram in list(self._by_gram):
            kept = array("I", (seq for seq in self._by_gram[gram] if seq >= first))
            if kept:
                self._by_gram[gram] = kept
            else:
                del self._by_gram[gram]
        self._dropped = 0
