"""The agreement (evidence-alignment) experiment: item construction, encoding, the runner and its files."""

from collections import Counter

import pandas as pd
import pytest
import torch

from captum_normxlogit import NormXLogit
from captum_normxlogit._commands.evaluate.agreement import evaluate_agreement
from captum_normxlogit._commands.evaluate.agreement_items import build_items, encode_items, interleave
from captum_normxlogit._utils.atomic import is_own_temporary
from captum_normxlogit.metrics import average_precision
from tests._support.tiny import VOCAB, llama_lm

PLURAL_VERBS = {"are", "were", "have"}
IRREGULAR_PLURALS = {"men", "women", "children"}


def _is_plural_noun(word):
    return word in IRREGULAR_PLURALS or (word.endswith("s") and not word.endswith("ss"))


class WordTokenizer:
    """A word-level stand-in for a Hugging Face tokenizer.

    Words in ``split`` become two tokens; with ``merge``, the whole-prefix encoding (but not a single
    word's) fuses that word pair into one token, like a BPE merge across a space would.
    """

    def __init__(self, split=(), merge=None):
        self.split, self.merge = set(split), merge
        self.vocab = {}

    def _id(self, piece):
        # ids from 5 up (0 is the tiny models' pad); the tiny runner test checks they stay below VOCAB
        return self.vocab.setdefault(piece, 5 + len(self.vocab))

    def __call__(self, text, add_special_tokens=False):
        words = text.split()
        if self.merge and " ".join(self.merge) in text:
            i = words.index(self.merge[0])
            words[i : i + 2] = ["_".join(self.merge)]
        ids = []
        for w in words:
            ids += [self._id(w[:2]), self._id(w[2:])] if w in self.split else [self._id(w)]
        return {"input_ids": ids}

    def word(self, ids):
        inverse = {v: k for k, v in self.vocab.items()}
        return "".join(inverse[i] for i in ids)


# ----------------------------------------------------------------------------- items
def test_items_are_minimal_pairs_with_a_disagreeing_distractor():
    items = build_items(per_paradigm=100)
    assert len(set(items)) == 300
    assert Counter(i.paradigm for i in items) == {"sva": 100, "dna": 100, "ana": 100}
    assert Counter((i.paradigm, i.plural) for i in items) == {(p, n): 50 for p in ("sva", "dna", "ana") for n in (0, 1)}
    for item in items:
        good, bad = item.sentence(True).split(), item.sentence(False).split()
        differ = [k for k, (a, b) in enumerate(zip(good, bad)) if a != b]
        assert len(good) == len(bad) and differ == [len(good) - 1], item
        assert item.cue != item.distractor and item.cue < len(item.words) and item.distractor < len(item.words)
        cue, distractor = item.words[item.cue], item.words[item.distractor]
        assert _is_plural_noun(distractor) != item.plural, item
        if item.paradigm == "sva":
            assert _is_plural_noun(cue) == item.plural == (item.good in PLURAL_VERBS), item
            assert item.cue == 1
        elif item.paradigm == "dna":
            assert cue in {"this", "that", "these", "those"}
            assert (cue in {"these", "those"}) == item.plural == _is_plural_noun(item.good), item
            assert item.cue >= len(item.words) - 2  # the noun follows the determiner (and an adjective)
        else:
            assert _is_plural_noun(cue) == item.plural == (item.good == "themselves"), item
            assert {item.good, item.bad} & {"himself", "herself", "itself"} and "themselves" in {item.good, item.bad}


def test_items_are_reproducible_and_seeded():
    assert build_items(per_paradigm=10) == build_items(per_paradigm=10)
    assert build_items(per_paradigm=10, seed=1) != build_items(per_paradigm=10)


def test_encoding_places_evidence_on_the_cue_word_and_counts_drops():
    items = build_items(per_paradigm=40)
    tokenizer = WordTokenizer(split={"author", "teachers", "these"}, merge=("next", "to"))
    encoded, dropped = encode_items(items, tokenizer)
    with_merge = sum("next" in i.words for i in items)
    assert with_merge > 0 and dropped["tokenization differs"] == with_merge
    assert dropped["good/bad word not one token"] == 0
    assert len(encoded) + sum(dropped.values()) == len(items)
    for e in encoded:
        assert list(e.input_ids) == tokenizer(e.item.prefix)["input_ids"]
        assert tokenizer.word([e.input_ids[p] for p in e.evidence]) == e.item.words[e.item.cue]
        assert tokenizer.word([e.input_ids[p] for p in e.distractor]) == e.item.words[e.item.distractor]
        assert not set(e.evidence) & set(e.distractor)
        assert tokenizer.word([e.good_id]) == e.item.good and tokenizer.word([e.bad_id]) == e.item.bad
    split_cues = [e for e in encoded if e.item.words[e.item.cue] in {"author", "these"}]
    assert split_cues and all(len(e.evidence) == 2 for e in split_cues)


def test_multi_token_good_or_bad_words_are_dropped():
    items = build_items(per_paradigm=20)
    encoded, dropped = encode_items(items, WordTokenizer(split={"themselves"}))
    expected = sum("themselves" in (i.good, i.bad) for i in items)
    assert expected > 0 and dropped["good/bad word not one token"] == expected
    assert all("themselves" not in (e.item.good, e.item.bad) for e in encoded)


def test_interleave_balances_any_prefix():
    encoded, _ = encode_items(build_items(per_paradigm=5), WordTokenizer())
    assert [e.item.paradigm for e in interleave(encoded)[:6]] == ["sva", "dna", "ana"] * 2


# ----------------------------------------------------------------------------- runner on a tiny model
@pytest.fixture(scope="module")
def tiny_run():
    tokenizer = WordTokenizer()
    encoded, dropped = encode_items(build_items(per_paradigm=4), tokenizer)
    items = interleave(encoded)[:9]
    assert max(max(e.input_ids + (e.good_id, e.bad_id)) for e in encoded) < VOCAB
    model = llama_lm()
    result = evaluate_agreement(model, items, pad_token_id=0, dropped=dropped, ig_steps=3, batch_size=4, progress=False)
    return model, items, result


def test_runner_table_covers_every_method_layer_and_paradigm(tiny_run):
    _, _, result = tiny_run
    table = result.table
    layered = table[table["layer"].notna()]
    assert set(layered["method"]) == {"NormXLogit", "NormXLogit (good−bad)", "LogAt", "LogAt (bad word)"}
    assert sorted(set(layered["layer"])) == [0, 1, 2]  # the tiny model has 2 blocks
    flat = table[table["layer"].isna()]
    assert set(flat["method"]) == {"Norm", "LayerIntegratedGradients", "Saliency", "Random"}
    assert (table.loc[table["paradigm"] == "all", "n_items"] == 9).all()
    assert (table.loc[table["paradigm"] != "all", "n_items"] == 3).all()
    assert table[["ap", "dp"]].gt(0).all().all() and table[["ap", "dp", "cue_wins"]].le(1).all().all()
    assert list(result.accuracy["paradigm"]) == ["sva", "dna", "ana", "all"]


def test_runner_normxlogit_matches_a_direct_computation(tiny_run):
    model, items, result = tiny_run
    nx = NormXLogit(model)
    direct = []
    for e in items:  # one item at a time: no padding, no batching
        ids = torch.tensor([e.input_ids])
        scores = nx.attribute(ids, target=e.good_id) - nx.attribute(ids, target=e.bad_id)
        direct.append(average_precision(scores, [e.evidence]).item())
    table = result.table
    row = table[(table["method"] == "NormXLogit (good−bad)") & (table["layer"] == 2) & (table["paradigm"] == "all")]
    assert row["ap"].item() == pytest.approx(sum(direct) / len(direct))


def test_random_dot_product_is_the_uniform_share(tiny_run):
    _, items, result = tiny_run
    share = sum(len(e.evidence) / len(e.input_ids) for e in items) / len(items)
    table = result.table
    assert table[(table["method"] == "Random") & (table["paradigm"] == "all")]["dp"].item() == pytest.approx(share)


def test_write_produces_csv_markdown_and_png(tiny_run, tmp_path):
    _, _, result = tiny_run
    paths = result.write(tmp_path / "out")
    assert [p.name for p in paths] == ["agreement.csv", "agreement.md", "agreement_layers.png"]
    back = pd.read_csv(paths[0])
    pd.testing.assert_frame_equal(
        back[["method", "paradigm", "n_items"]], result.table[["method", "paradigm", "n_items"]]
    )
    assert back["ap"].to_numpy() == pytest.approx(result.table["ap"].to_numpy(), abs=1e-6)
    text = paths[1].read_text()
    assert "| NormXLogit |" in text and "LayerIntegratedGradients" in text
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in (tmp_path / "out").iterdir() if is_own_temporary(p.name)]


def test_runner_restores_the_models_gradient_flags(tiny_run):
    model, _, _ = tiny_run
    assert all(p.requires_grad for p in model.parameters())


def test_runner_refuses_empty_input():
    with pytest.raises(ValueError, match="no agreement items"):
        evaluate_agreement(llama_lm(), [], pad_token_id=0, progress=False)


@pytest.mark.parametrize("limit", [0, -3, 2.5, True])
def test_run_agreement_rejects_a_bad_limit_before_loading_anything(limit):
    from captum_normxlogit._commands.evaluate.agreement import run_agreement

    with pytest.raises(ValueError, match="limit must be a positive int"):
        run_agreement(limit=limit, progress=False)


# ----------------------------------------------------------------------------- the real tokenizer and model
@pytest.fixture(scope="module")
def smollm2_tokenizer():
    from transformers import AutoTokenizer

    from captum_normxlogit.resources import smollm2_dir

    return AutoTokenizer.from_pretrained(smollm2_dir(), local_files_only=True)


@pytest.mark.real
def test_real_tokenizer_evidence_decodes_to_the_cue_words(smollm2_tokenizer):
    tok = smollm2_tokenizer
    items = build_items()
    encoded, dropped = encode_items(items, tok)
    assert len(encoded) + sum(dropped.values()) == len(items)
    for e in encoded:
        assert tok.decode([e.input_ids[p] for p in e.evidence]) == " " + e.item.words[e.item.cue]
        assert tok.decode([e.input_ids[p] for p in e.distractor]) == " " + e.item.words[e.item.distractor]
        assert tok.decode([e.good_id]) == " " + e.item.good and tok.decode([e.bad_id]) == " " + e.item.bad
        assert list(e.input_ids) == tok(e.item.prefix)["input_ids"]  # what the model sees in running text


@pytest.mark.real
def test_real_run_with_a_small_limit(tmp_path):
    from captum_normxlogit._commands.evaluate.agreement import run_agreement

    result = run_agreement(limit=6, ig_steps=2, batch_size=6, progress=False)
    table = result.table
    assert sorted(set(table["layer"].dropna())) == list(range(31))  # SmolLM2: 30 blocks
    assert (table.loc[table["paradigm"] == "all", "n_items"] == 6).all()
    assert result.accuracy.set_index("paradigm").loc["all", "n_items"] == 6
    assert len(result.write(tmp_path)) == 3
