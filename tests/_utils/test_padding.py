"""The one padding helper, the one "right-padded" definition and the one pad -> EOS fallback."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from captum_normxlogit._utils.padding import is_right_padded, pad_batch, pad_token_id_or_eos

ROWS: list[list[int] | torch.Tensor] = [[5, 6, 7], [8], torch.tensor([9, 10])]  # both row kinds


def _expected(rows, pad, side, width):
    """Plain-Python padding, row by row."""
    ids, mask = [], []
    for row in rows:
        row = [int(t) for t in row]
        fill = [pad] * (width - len(row))
        ids.append(row + fill if side == "right" else fill + row)
        ones, zeros = [1] * len(row), [0] * len(fill)
        mask.append(ones + zeros if side == "right" else zeros + ones)
    return torch.tensor(ids), torch.tensor(mask)


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("width", [None, 5])
def test_pad_batch_matches_row_by_row_padding(side, width) -> None:
    ids, mask = pad_batch(ROWS, 0 if side == "right" else 2, side=side, width=width)
    want_ids, want_mask = _expected(ROWS, 0 if side == "right" else 2, side, width or 3)
    assert ids.dtype == mask.dtype == torch.long
    assert torch.equal(ids, want_ids) and torch.equal(mask, want_mask)
    assert bool(is_right_padded(mask).all()) == (side == "right")


def test_pad_batch_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="side must be"):
        pad_batch(ROWS, 0, side="middle")  # type: ignore[arg-type]  # the bad input under test
    with pytest.raises(ValueError, match="at least one row"):
        pad_batch([], 0)
    with pytest.raises(ValueError, match="shorter than the longest row"):
        pad_batch(ROWS, 0, width=2)


def test_is_right_padded_rows() -> None:
    mask = torch.tensor(
        [
            [1, 1, 0, 0],  # right padding
            [1, 1, 1, 1],  # no padding
            [0, 0, 0, 0],  # padding only
            [0, 0, 1, 1],  # left padding
            [1, 0, 1, 0],  # a real token after a pad
            [0, 1, 1, 0],  # pads on both sides
        ]
    )
    assert is_right_padded(mask).tolist() == [True, True, True, False, False, False]
    assert is_right_padded(mask.bool()).tolist() == is_right_padded(mask).tolist()


def test_pad_token_falls_back_to_eos() -> None:
    assert pad_token_id_or_eos(SimpleNamespace(pad_token_id=3, eos_token_id=7)) == 3
    assert pad_token_id_or_eos(SimpleNamespace(pad_token_id=0, eos_token_id=7)) == 0  # 0 is a real id
    assert pad_token_id_or_eos(SimpleNamespace(pad_token_id=None, eos_token_id=7)) == 7
    assert pad_token_id_or_eos(SimpleNamespace(pad_token_id=None, eos_token_id=None)) is None
    assert pad_token_id_or_eos(object()) is None
