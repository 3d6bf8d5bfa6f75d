r"""Agreement items for the evidence-alignment experiment, built by construction.

The paper scores attributions against BLiMP's agreement paradigms (§4 of the
reference). BLiMP is a download; these items are written from small word
lists instead, so the good word, the bad word, the cue word (the evidence) and
a distractor noun are known by construction, with no parser involved. Each item
is a prefix that ends right before the word a causal LM must choose:

* ``sva``  subject–verb: ``The key near the cabinets`` → `` is`` / `` are``;
  evidence = the subject noun, distractor = the noun inside the PP or
  relative clause, always of the other number.
* ``dna``  determiner–noun: ``The teachers said that Sarah bought this (old)``
  → `` book`` / `` books``; evidence = the determiner, distractor = the
  subject noun of the other number.
* ``ana``  anaphor: ``The men near the woman hurt`` → `` themselves`` /
  `` himself``; evidence = the antecedent noun, distractor = the other noun,
  of the other number.

Half the items have a singular cue, half a plural one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

__all__ = ["PARADIGMS", "AgreementItem", "EncodedItem", "build_items", "encode_items", "interleave"]

PARADIGMS = ("sva", "dna", "ana")

# (singular, plural) pairs. Nouns used as cues and as distractors never overlap within a paradigm.
_SVA_SUBJECTS = [
    ("author", "authors"),
    ("teacher", "teachers"),
    ("picture", "pictures"),
    ("key", "keys"),
    ("dog", "dogs"),
    ("student", "students"),
    ("letter", "letters"),
    ("painting", "paintings"),
    ("doctor", "doctors"),
    ("friend", "friends"),
    ("house", "houses"),
    ("report", "reports"),
    ("manager", "managers"),
    ("road", "roads"),
    ("window", "windows"),
    ("child", "children"),
]
_SVA_PLACES = [
    ("cabinet", "cabinets"),
    ("village", "villages"),
    ("river", "rivers"),
    ("garden", "gardens"),
    ("farm", "farms"),
]
# Only people can be the subject of the relative clause ("the boys saw").
_SVA_PEOPLE = [
    ("boy", "boys"),
    ("girl", "girls"),
    ("painter", "painters"),
    ("lawyer", "lawyers"),
    ("officer", "officers"),
]
_SVA_VERBS = [("is", "are"), ("was", "were"), ("has", "have")]
_PREPOSITIONS = ["near", "behind", "beside", "next to", "with"]
_RELATIVE_VERBS = ["saw", "liked", "visited", "found", "met", "remembered"]

_DNA_OBJECTS = [
    ("chair", "chairs"),
    ("table", "tables"),
    ("book", "books"),
    ("car", "cars"),
    ("box", "boxes"),
    ("lamp", "lamps"),
    ("bike", "bikes"),
    ("window", "windows"),
    ("picture", "pictures"),
    ("bag", "bags"),
    ("door", "doors"),
    ("plate", "plates"),
    ("cup", "cups"),
    ("shirt", "shirts"),
    ("bottle", "bottles"),
    ("desk", "desks"),
]
_DNA_PEOPLE = [
    ("neighbor", "neighbors"),
    ("teacher", "teachers"),
    ("student", "students"),
    ("child", "children"),
    ("woman", "women"),
    ("man", "men"),
    ("doctor", "doctors"),
    ("guest", "guests"),
]
_DNA_VERBS = [
    ("clean", "cleaned"),
    ("move", "moved"),
    ("sell", "sold"),
    ("buy", "bought"),
    ("paint", "painted"),
    ("fix", "fixed"),
    ("carry", "carried"),
    ("find", "found"),
]
_NAMES = ["Sarah", "John", "Maria", "David", "Emma", "Peter", "Lisa", "Mark"]
_DETERMINERS = (("this", "that"), ("these", "those"))
_ADJECTIVES = ["old", "new", "small", "heavy", "red", "broken"]

# (singular, plural, singular reflexive)
_ANA_ANTECEDENTS = [
    ("man", "men", "himself"),
    ("woman", "women", "herself"),
    ("boy", "boys", "himself"),
    ("girl", "girls", "herself"),
    ("king", "kings", "himself"),
    ("queen", "queens", "herself"),
    ("father", "fathers", "himself"),
    ("mother", "mothers", "herself"),
    ("actor", "actors", "himself"),
    ("actress", "actresses", "herself"),
    ("brother", "brothers", "himself"),
    ("sister", "sisters", "herself"),
    ("company", "companies", "itself"),
    ("government", "governments", "itself"),
    ("machine", "machines", "itself"),
    ("committee", "committees", "itself"),
]
_ANA_DISTRACTORS = [
    ("doctor", "doctors"),
    ("teacher", "teachers"),
    ("child", "children"),
    ("student", "students"),
    ("neighbor", "neighbors"),
    ("guest", "guests"),
    ("lawyer", "lawyers"),
    ("officer", "officers"),
    ("driver", "drivers"),
]
_ANA_VERBS = ["hurt", "blamed", "praised", "protected", "criticized", "described", "defended", "helped"]


@dataclass(frozen=True)
class AgreementItem:
    r"""One minimal pair, as words.

    Attributes:
        paradigm (str): ``"sva"``, ``"dna"`` or ``"ana"``.
        words (tuple[str, ...]): The prefix, one word per entry (a multi-word
            preposition such as ``next to`` is two entries).
        good (str): The grammatical next word (no leading space).
        bad (str): The ungrammatical one; it differs from ``good`` only in number
            (or, for anaphors, in number and so in form).
        cue (int): Index in ``words`` of the evidence word.
        distractor (int): Index in ``words`` of the distractor noun, whose
            number disagrees with the cue's.
        plural (bool): Whether the cue (and the good word) is plural.
    """

    paradigm: str
    words: Tuple[str, ...]
    good: str
    bad: str
    cue: int
    distractor: int
    plural: bool

    @property
    def prefix(self) -> str:
        return " ".join(self.words)

    def sentence(self, good: bool = True) -> str:
        r"""The prefix followed by the good (or bad) word."""
        return f"{self.prefix} {self.good if good else self.bad}"


@dataclass(frozen=True)
class EncodedItem:
    r"""An item in a tokenizer's ids, with its evidence positions.

    Attributes:
        item (AgreementItem): The words.
        input_ids (tuple[int, ...]): The prefix's token ids (no special tokens).
        spans (tuple[tuple[int, int], ...]): ``[start, stop)`` token positions
            of each word of ``item.words``.
        good_id (int): The good word's single token, with its leading space.
        bad_id (int): The bad word's.
    """

    item: AgreementItem
    input_ids: Tuple[int, ...]
    spans: Tuple[Tuple[int, int], ...]
    good_id: int
    bad_id: int

    @property
    def evidence(self) -> List[int]:
        r"""Token positions of the cue word."""
        start, stop = self.spans[self.item.cue]
        return list(range(start, stop))

    @property
    def distractor(self) -> List[int]:
        r"""Token positions of the distractor noun."""
        start, stop = self.spans[self.item.distractor]
        return list(range(start, stop))


def _pick(rng: random.Random, options: Sequence[Any]) -> Any:
    return options[rng.randrange(len(options))]


def _sva(rng: random.Random, plural: bool) -> AgreementItem:
    subject, verb = _pick(rng, _SVA_SUBJECTS), _pick(rng, _SVA_VERBS)
    relative = rng.random() < 0.5
    distractor = _pick(rng, _SVA_PEOPLE if relative else _SVA_PLACES + _SVA_PEOPLE)
    s, d = subject[int(plural)], distractor[int(not plural)]
    if not relative:  # "The key near the cabinets"
        words = ("The", s, *_pick(rng, _PREPOSITIONS).split(), "the", d)
        where = len(words) - 1
    else:  # "The key that the boys found"
        words = ("The", s, "that", "the", d, _pick(rng, _RELATIVE_VERBS))
        where = 4
    return AgreementItem("sva", words, verb[int(plural)], verb[int(not plural)], 1, where, plural)


def _dna(rng: random.Random, plural: bool) -> AgreementItem:
    noun, person = _pick(rng, _DNA_OBJECTS), _pick(rng, _DNA_PEOPLE)
    verb, name = _pick(rng, _DNA_VERBS), _pick(rng, _NAMES)
    determiner = _pick(rng, _DETERMINERS[int(plural)])
    p = person[int(not plural)]
    if rng.random() < 0.5:  # "The teachers watched Sarah clean this"
        words = ["The", p, "watched", name, verb[0], determiner]
    else:  # "The teachers said that Sarah cleaned this"
        words = ["The", p, "said", "that", name, verb[1], determiner]
    cue = len(words) - 1
    if rng.random() < 0.5:  # BLiMP's "with adjective" variant
        words.append(_pick(rng, _ADJECTIVES))
    return AgreementItem("dna", tuple(words), noun[int(plural)], noun[int(not plural)], cue, 1, plural)


def _ana(rng: random.Random, plural: bool) -> AgreementItem:
    antecedent, distractor = _pick(rng, _ANA_ANTECEDENTS), _pick(rng, _ANA_DISTRACTORS)
    verb = _pick(rng, _ANA_VERBS)
    a, d = antecedent[int(plural)], distractor[int(not plural)]
    if rng.random() < 0.5:  # "The men near the woman hurt"
        words = ("The", a, *_pick(rng, _PREPOSITIONS).split(), "the", d, verb)
        where = len(words) - 2
    else:  # "The men that the woman liked hurt"
        words = ("The", a, "that", "the", d, _pick(rng, _RELATIVE_VERBS), verb)
        where = 4
    good, bad = ("themselves", antecedent[2]) if plural else (antecedent[2], "themselves")
    return AgreementItem("ana", words, good, bad, 1, where, plural)


_BUILDERS = {"sva": _sva, "dna": _dna, "ana": _ana}


def build_items(per_paradigm: int = 100, seed: int = 12) -> List[AgreementItem]:
    r"""Draw distinct items from the word lists, half with a plural cue.

    Args:
        per_paradigm (int, optional): Items per paradigm. Default: 100
        seed (int, optional): Seeds the draw. Default: 12

    Returns:
        list of :class:`AgreementItem`, grouped by paradigm in
        :data:`PARADIGMS` order.
    """
    if per_paradigm < 1:
        raise ValueError(f"per_paradigm must be at least 1, got {per_paradigm}.")
    items: List[AgreementItem] = []
    for paradigm in PARADIGMS:
        rng = random.Random(f"{seed}-{paradigm}")
        seen: Dict[AgreementItem, None] = {}
        for _ in range(per_paradigm * 50):  # the lists allow thousands of items; this never runs dry
            if len(seen) == per_paradigm:
                break
            seen.setdefault(_BUILDERS[paradigm](rng, plural=len(seen) % 2 == 1))
        if len(seen) < per_paradigm:
            raise ValueError(f"the {paradigm} word lists give only {len(seen)} distinct items.")
        items.extend(seen)
    return items


def _ids(tokenizer: Any, text: str) -> List[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_items(items: Sequence[AgreementItem], tokenizer: Any) -> Tuple[List[EncodedItem], Dict[str, int]]:
    r"""Tokenize the items word by word and keep those a causal LM can score.

    Every word after the first is encoded with its leading space, as in running
    text, so each word's token positions are known by construction. An item is
    dropped when its good or bad word is not one token (with the leading
    space), or when the word-by-word ids differ from the tokenizer's ids for the
    whole prefix (the model would otherwise see a tokenization it never sees).

    Args:
        items (sequence of AgreementItem): From :func:`build_items`.
        tokenizer: A Hugging Face tokenizer (anything called as
            ``tokenizer(text, add_special_tokens=False)["input_ids"]``).

    Returns:
        ``(encoded, dropped)``: the kept items, and the number dropped per
        reason (``"good/bad word not one token"``, ``"tokenization differs"``).
    """
    encoded: List[EncodedItem] = []
    dropped = {"good/bad word not one token": 0, "tokenization differs": 0}
    for item in items:
        good, bad = _ids(tokenizer, " " + item.good), _ids(tokenizer, " " + item.bad)
        if len(good) != 1 or len(bad) != 1:
            dropped["good/bad word not one token"] += 1
            continue
        ids: List[int] = []
        spans = []
        for i, word in enumerate(item.words):
            pieces = _ids(tokenizer, word if i == 0 else " " + word)
            spans.append((len(ids), len(ids) + len(pieces)))
            ids.extend(pieces)
        if ids != _ids(tokenizer, item.prefix):
            dropped["tokenization differs"] += 1
            continue
        encoded.append(EncodedItem(item, tuple(ids), tuple(spans), good[0], bad[0]))
    return encoded, dropped


def interleave(items: Sequence[EncodedItem]) -> List[EncodedItem]:
    r"""Round-robin over paradigms, so any leading slice is balanced."""
    groups = [[e for e in items if e.item.paradigm == p] for p in PARADIGMS]
    out: List[EncodedItem] = []
    for i in range(max((len(g) for g in groups), default=0)):
        out.extend(g[i] for g in groups if i < len(g))
    return out
