r"""The model side of a dataset run: records -> checked, tokenized examples -> output rows.

One :class:`RowExplainer` per run. :meth:`RowExplainer.prepare` tokenizes a shard's records and
sorts out the bad ones (each with a message naming the problem);
:meth:`RowExplainer.run` explains one batch with one forward pass:

* classifiers, regression heads, masked LMs and causal LMs (next token):
  :meth:`NormXLogit.attribute_with_prediction` on a right-padded batch, which
  hands back the model's own output from its one pass (the probabilities);
* causal LMs with a string target: :meth:`LLMNormXLogit.attribute_batch`
  teacher-forces the continuation and returns the ``(n_out, n_in)`` matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from captum.attr import TextTokenInput
from torch import nn

from captum_normxlogit._core.llm import LLMNormXLogit
from captum_normxlogit._core.normxlogit import NormXLogit
from captum_normxlogit._models.tasks import CAUSAL_LM, MASKED_LM, SEQUENCE_CLASSIFICATION
from captum_normxlogit._utils.model_parts import input_limit
from captum_normxlogit._utils.padding import pad_batch, pad_token_id_or_eos
from captum_normxlogit.dataset import _targets as T

__all__ = ["Example", "RowExplainer"]


@dataclass
class Example:
    r"""One checked example, ready for the model."""

    index: int
    base: Dict[str, Any]  # index, text, text_pair, label, label_id
    ids: List[int]
    type_ids: Optional[List[int]] = None
    target: Optional[int] = None  # None: the model's own prediction
    foil: Optional[int] = None
    forced: Optional[List[int]] = None  # causal LM: teacher-forced continuation
    forced_foil: Optional[List[int]] = None

    @property
    def length(self) -> int:
        return len(self.ids) + (len(self.forced) - 1 if self.forced else 0)


class _Preencoded:
    r"""Tokenizer stand-in for ``TextTokenInput``: hands back ids already checked and truncated."""

    def __init__(self, ids: List[int], tokenizer: Any) -> None:
        self._ids, self._tokenizer = ids, tokenizer

    def encode(self, text: str, return_tensors: Optional[str] = None) -> torch.Tensor:
        return torch.tensor([self._ids], dtype=torch.long)

    def convert_ids_to_tokens(self, ids: List[int]) -> List[str]:
        return self._tokenizer.convert_ids_to_tokens(ids)


class RowExplainer:
    r"""How one run reads, checks and explains examples, row by row (see the module docstring)."""

    def __init__(
        self,
        model_or_nx: Any,
        tokenizer: Any,
        *,
        text_column: str,
        pair_column: Optional[str],
        label_column: Optional[str],
        target: Any,
        foil: Any,
        layers: Any,
        max_length: Optional[int],
        truncation: bool,
    ) -> None:
        base = model_or_nx if isinstance(model_or_nx, NormXLogit) else None
        if base is None and not isinstance(model_or_nx, nn.Module):
            raise TypeError(
                f"model_or_nx must be a Hugging Face model or a NormXLogit, got {type(model_or_nx).__name__}."
            )
        if base is not None and base.layer is not None:
            raise ValueError("pass a NormXLogit built with layer=None; ask for layer-wise scores with layers=.")
        if base is None:
            base = NormXLogit(model_or_nx)
        self.model, self.adapter, self.tokenizer = base.model, base.adapter, tokenizer
        adapter = self.adapter
        self.task, self.is_regression = adapter.task, adapter.is_regression
        self.is_classifier = self.task == SEQUENCE_CLASSIFICATION and not self.is_regression
        self.text_column, self.pair_column, self.label_column = text_column, pair_column, label_column
        self.target, self.foil = T.parse_spec(target, "target"), T.parse_spec(foil, "foil")
        self.forced = self.task == CAUSAL_LM and (isinstance(self.target, str) or isinstance(self.target, T.Column))
        if self.is_regression and (self.target is not None or self.foil is not None):
            raise T.TargetError("a regression head (one label) has no classes: pass target=None and foil=None.")
        if pair_column is not None and self.task == CAUSAL_LM:
            raise ValueError("pair_column is for sentence-pair classifiers and masked LMs; a causal LM reads one text.")
        config = getattr(self.model, "config", None)
        id2label = getattr(config, "id2label", None) if self.is_classifier else None
        self.id2label = {int(k): str(v) for k, v in id2label.items()} if id2label else None
        if self.is_classifier and (self.id2label is None or len(self.id2label) != adapter.num_outputs):
            self.id2label = {i: str(i) for i in range(adapter.num_outputs)}
        self.mask_id = getattr(tokenizer, "mask_token_id", None) if self.task == MASKED_LM else None
        if self.task == MASKED_LM and self.mask_id is None:
            raise ValueError("a masked LM needs a tokenizer with a mask token (tokenizer.mask_token_id is None).")
        self.layers = self._layer_indices(layers, adapter.n_layers)
        indices = (self.layers + [adapter.n_layers]) if self.layers and not self.forced else None
        self.nx = NormXLogit(
            self.model,
            layer=indices,
            multiply_by_inputs=base.multiplies_by_inputs,
            adapter=adapter,
            mask_token_id=self.mask_id or base.mask_token_id,
        )
        self.llm = (
            LLMNormXLogit(
                NormXLogit(self.model, multiply_by_inputs=base.multiplies_by_inputs, adapter=adapter), tokenizer
            )
            if self.forced
            else None
        )
        self.limit = input_limit(self.model, tokenizer, max_length)
        self.truncation = bool(truncation)
        pad = pad_token_id_or_eos(tokenizer)
        self.pad_id = int(pad) if pad is not None else 0
        vocab = adapter.num_outputs
        # fixed targets and foils are resolved now: a bad one is a configuration error
        self.fixed_target = self._resolve(self.target, "target") if not isinstance(self.target, T.Column) else None
        self.fixed_foil = self._resolve(self.foil, "foil", foil=True) if not isinstance(self.foil, T.Column) else None
        self.vocab = vocab

    # -- settings ------------------------------------------------------------------------------
    @staticmethod
    def _layer_indices(layers: Any, n_layers: int) -> List[int]:
        if layers is None:
            return []
        if layers == "all":
            return list(range(n_layers + 1))
        if isinstance(layers, int) and not isinstance(layers, bool):
            layers = [layers]
        out = []
        for layer in layers:
            if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer <= n_layers:
                raise ValueError(f"layers must be 'all' or hidden-state indices in 0..{n_layers}; got {layer!r}.")
            out.append(int(layer))
        if not out:
            raise ValueError("layers is empty; pass None, 'all' or a list of indices.")
        return out

    def columns(self) -> List[str]:
        r"""The data columns this run reads (text first)."""
        names = [self.text_column, self.pair_column, self.label_column]
        names += [spec.name for spec in (self.target, self.foil) if isinstance(spec, T.Column)]
        return [n for n in names if n is not None]

    def _resolve(self, value: Any, what: str, foil: bool = False) -> Any:
        if value is None:
            return None
        if self.is_classifier:
            return T.label_index(self.id2label, value, what)  # type: ignore[arg-type]  # set for classifiers
        if self.forced:  # a causal LM's string target is a continuation; its foil matches it
            if isinstance(value, int) and not isinstance(value, bool):
                return [T.one_token(self.tokenizer, self.adapter.num_outputs, value, what)]
            return T.continuation(self.tokenizer, self.adapter.num_outputs, value, what)
        return T.one_token(self.tokenizer, self.adapter.num_outputs, value, what)

    def label_name(self, index: int) -> str:
        if self.id2label is not None:
            return self.id2label.get(index, str(index))
        return self.tokenizer.decode([index])

    # -- reading and checking ----------------------------------------------------------------------
    def prepare(self, items: Sequence[Tuple[int, Dict[str, Any]]]) -> Tuple[List[Example], List[Dict[str, Any]]]:
        r"""Tokenize and check ``[(index, record)]``: ``(examples, error rows)``; error rows hold ``error``."""
        examples: List[Example] = []
        errors: List[Dict[str, Any]] = []
        good: List[Tuple[Dict[str, Any], Dict[str, Any]]] = []
        for index, record in items:
            base, problem = self._base(index, record)
            if problem:
                errors.append({**base, "error": problem})
            else:
                good.append((base, record))
        if not good:
            return examples, errors
        encodings = self._tokenize(
            [b["text"] for b, _ in good], [b["text_pair"] for b, _ in good] if self.pair_column else None
        )
        for (base, record), (ids, type_ids, n_full) in zip(good, encodings):
            try:
                examples.append(self._example(base, record, ids, type_ids, n_full))
            except T.TargetError as problem:
                errors.append({**base, "error": str(problem)})
        return examples, errors

    def _base(self, index: int, record: Dict[str, Any]) -> Tuple[Dict[str, Any], Optional[str]]:
        text = record.get(self.text_column)
        pair = record.get(self.pair_column) if self.pair_column else None
        label = record.get(self.label_column) if self.label_column else None
        base = {
            "index": index,
            "text": text if isinstance(text, str) else None,
            "text_pair": pair if isinstance(pair, str) else None,
            "label": None if label is None else str(label),
            "label_id": T.label_of(self.id2label, label),
        }
        for name, value in ((self.text_column, text), (self.pair_column, pair)):
            if name is None:
                continue
            if value is None:
                return base, f"{name} is missing (None)"
            if not isinstance(value, str):
                return base, f"{name} is a {type(value).__name__}, not a string"
            if not value.strip():
                return base, f"{name} is empty"
        return base, None

    def _tokenize(self, texts: List[str], pairs: Optional[List[str]]) -> List[Tuple[List[int], Any, int]]:
        tok = self.tokenizer
        encoded = tok(texts, pairs, add_special_tokens=True, truncation=False, verbose=False)
        ids_list, types = encoded["input_ids"], encoded.get("token_type_ids")
        out = []
        for i, ids in enumerate(ids_list):
            type_ids = types[i] if (types is not None and pairs is not None) else None
            n_full = len(ids)
            if n_full > self.limit and self.truncation and self.task != CAUSAL_LM:
                one = tok(
                    texts[i],
                    pairs[i] if pairs else None,
                    add_special_tokens=True,
                    truncation=True,
                    max_length=self.limit,
                    verbose=False,
                )
                ids = one["input_ids"]
                type_ids = one.get("token_type_ids") if pairs is not None else None
            out.append((list(ids), list(type_ids) if type_ids is not None else None, n_full))
        return out

    def _example(
        self, base: Dict[str, Any], record: Dict[str, Any], ids: List[int], type_ids: Any, n_full: int
    ) -> Example:
        ex = Example(base["index"], base, ids, type_ids)
        if self.forced:
            if isinstance(self.target, T.Column):
                ex.forced = self._resolve(record.get(self.target.name), f"target {self.target.name!r}")
            else:  # a forced target is a column or a fixed string, resolved in __init__
                assert self.fixed_target is not None
                ex.forced = list(self.fixed_target)
            foil = (
                self._resolve(record.get(self.foil.name), f"foil {self.foil.name!r}")
                if isinstance(self.foil, T.Column)
                else self.fixed_foil
            )
            if foil is not None and len(foil) not in (1, len(ex.forced)):
                raise T.TargetError(
                    f"foil is {len(foil)} tokens for a {len(ex.forced)}-token target; "
                    "give one token or as many as the target."
                )
            ex.forced_foil = foil
        else:
            ex.target = (
                self._resolve(record.get(self.target.name), f"target {self.target.name!r}")
                if isinstance(self.target, T.Column)
                else self.fixed_target
            )
            ex.foil = (
                self._resolve(record.get(self.foil.name), f"foil {self.foil.name!r}")
                if isinstance(self.foil, T.Column)
                else self.fixed_foil
            )
        limit = self.limit - (len(ex.forced) - 1 if ex.forced else 0)
        if len(ex.ids) > limit:
            if not self.truncation or self.task != CAUSAL_LM or limit < 1:
                raise T.TargetError(
                    f"text is {n_full} tokens but the model takes at most {self.limit}"
                    + (f" (with the {len(ex.forced)}-token target)" if ex.forced else "")
                    + "; pass truncation=True (CLI: --truncate) to cut it"
                )
            ex.ids = ex.ids[-limit:]  # a causal LM predicts what follows the end: keep the end
        if self.task == MASKED_LM:
            count = ex.ids.count(self.mask_id)  # type: ignore[arg-type]  # __init__ refuses a masked LM without one
            if count != 1:
                after = " after truncation" if n_full > len(ex.ids) else ""
                raise T.TargetError(
                    f"a masked LM needs the mask token {self.tokenizer.mask_token!r} exactly once "
                    f"in the text, found {count}{after}"
                )
        return ex

    # -- explaining ----------------------------------------------------------------------------------
    def run(self, batch: List[Example]) -> List[Dict[str, Any]]:
        r"""Explain one batch (one forward pass); returns one output row per example."""
        return self._run_forced(batch) if self.forced else self._run_plain(batch)

    def _run_plain(self, batch: List[Example]) -> List[Dict[str, Any]]:
        ids, mask = pad_batch([ex.ids for ex in batch], self.pad_id)
        types = None
        if batch[0].type_ids is not None:  # one tokenizer: every example has them or none has
            types = pad_batch([ex.type_ids for ex in batch if ex.type_ids is not None], 0)[0]
        target = None if self.target is None else torch.tensor([ex.target for ex in batch])
        foil = None if self.foil is None else torch.tensor([ex.foil for ex in batch])
        out, predicted = self.nx.attribute_with_prediction(
            ids, target=target, additional_forward_args=(mask, types) if types is not None else (mask,), foil=foil
        )
        logits = predicted.cpu()  # the model's own output, from NormXLogit's one pass
        if self.layers:
            final, layer_scores = out[-1], torch.stack(out[:-1], dim=1).float().cpu().numpy()
        else:
            final, layer_scores = out, None
        final = final.float().cpu().numpy()
        rows = []
        probs = None if self.is_regression else logits.softmax(-1)
        for b, ex in enumerate(batch):
            n = len(ex.ids)
            row = {
                **ex.base,
                "input_ids": ex.ids,
                "tokens": self.tokenizer.convert_ids_to_tokens(ex.ids),
                "scores": final[b, :n],
            }
            if layer_scores is not None:
                row["layer_scores"] = list(layer_scores[b, :, :n])
            if probs is None:
                row["value"] = float(logits[b, 0])
            else:
                pred = int(probs[b].argmax())
                tgt = pred if ex.target is None else ex.target
                row.update(
                    target=tgt,
                    target_label=self.label_name(tgt),
                    prob=float(probs[b, tgt]),
                    predicted=pred,
                    predicted_label=self.label_name(pred),
                    foil=ex.foil,
                )
            rows.append(row)
        return rows

    def _run_forced(self, batch: List[Example]) -> List[Dict[str, Any]]:
        llm = self.llm
        assert llm is not None  # __init__ builds it for every forced task
        prompts = [TextTokenInput(ex.base["text"], _Preencoded(ex.ids, self.tokenizer)) for ex in batch]
        targets = [torch.tensor(ex.forced) for ex in batch]
        foils = None
        if self.foil is not None:
            foil_list = [torch.tensor(ex.forced_foil) for ex in batch]
            foils = foil_list if len(batch) > 1 else foil_list[0]
        results = llm.attribute_batch(prompts, targets, foil=foils)
        rows = []
        for b, (ex, res) in enumerate(zip(batch, results)):
            assert ex.forced is not None  # _example sets it for every forced task
            output_probs = res.output_probs.float().numpy()
            row = {
                **ex.base,
                "input_ids": ex.ids,
                "tokens": self.tokenizer.convert_ids_to_tokens(ex.ids),
                "scores": res.seq_attr.float().numpy(),
                "token_attr": list(res.token_attr.float().numpy()),
                "output_ids": ex.forced,
                "output_tokens": self.tokenizer.convert_ids_to_tokens(ex.forced),
                "output_probs": output_probs,
                "target": ex.forced[0] if len(ex.forced) == 1 else None,
                "target_label": self.tokenizer.decode(ex.forced),
                "prob": float(np.prod(output_probs)),
                "foil": ex.forced_foil[0] if ex.forced_foil is not None and len(ex.forced_foil) == 1 else None,
            }
            if self.layers:
                layered = llm.attribute_layers(
                    prompts[b],
                    targets[b],
                    foil=None if foils is None else torch.tensor(ex.forced_foil),
                    layers=self.layers,
                )
                row["layer_scores"] = list(layered.scores.sum(0).float().numpy())
            rows.append(row)
        return rows
