r"""``summarize --verify`` and ``--against``: the model of a folder, the verified summary, the contrast."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict, Tuple

__all__ = ["model_of", "page_settings", "print_contrast", "verified_summary"]


def model_of(handle: Any, path: str = "") -> Tuple[Any, Any]:
    r"""``(model, tokenizer)`` that wrote ``handle``'s folder: the manifest's model folder, or
    ``path``, checked against the manifest's weights fingerprint.

    Raises:
        ValueError: No such folder, or its weights are not the ones that wrote the rows.
    """
    from captum_normxlogit._models.load import load_model_folder
    from captum_normxlogit.dataset.verify import weights_fingerprint

    recorded = handle.manifest.get("model", {})
    path = path or recorded.get("path") or ""
    if not path or not Path(path).is_dir():
        raise ValueError(
            f"--verify: the manifest of {handle.output_dir} names no model folder that exists here "
            f"({path or 'none'}); pass --model DIR"
        )
    model, tokenizer, _ = load_model_folder(path)
    if recorded.get("weights_digest") and weights_fingerprint(model) != recorded["weights_digest"]:
        raise ValueError(
            f"--verify: the model in {path} is not the one that wrote {handle.output_dir} (its weights differ); "
            "pass --model with the folder of that model"
        )
    return model, tokenizer


def verified_summary(handle: Any, summary: Any, args: argparse.Namespace) -> Any:
    r"""The summary checked by occlusion with the folder's model (or ``--model``), cached in the folder."""
    from captum_normxlogit.dataset.verify import DEFAULT_MAX_EXAMPLES, DEFAULT_TOP_K, verify_summary

    model, tokenizer = model_of(handle, args.model or "")
    return verify_summary(
        summary,
        model,
        tokenizer,
        top_k=args.top_k or DEFAULT_TOP_K,
        max_examples=args.max_examples or DEFAULT_MAX_EXAMPLES,
        level=args.level,
        cache_dir=handle.output_dir,
        rows_weights=handle.manifest.get("model", {}).get("weights_digest"),
    )


def print_contrast(handle: Any, args: argparse.Namespace) -> None:
    r"""``--against DIR_B``: print (and with ``--csv`` write) DIR's summary against DIR_B's."""
    from captum_normxlogit._utils.atomic import atomic_write_text
    from captum_normxlogit.dataset import open_attribution
    from captum_normxlogit.dataset.compare import compare_summaries
    from captum_normxlogit.dataset.report import contrast_markdown
    from captum_normxlogit.dataset.verify import DEFAULT_MAX_EXAMPLES

    other = open_attribution(args.against)
    a = handle.summary(statistic=args.statistic, min_count=args.min_count)
    b = other.summary(statistic=args.statistic, min_count=args.min_count)
    models: Dict[str, Any] = {}
    if args.verify:
        model_a, tokenizer = model_of(handle, args.model or "")
        models = {"model_a": model_a, "model_b": model_of(other)[0], "tokenizer": tokenizer}
    n = args.top_k or 10
    contrast = compare_summaries(
        a, b, level=args.level, n=n, max_examples=args.max_examples or DEFAULT_MAX_EXAMPLES, **models
    )
    print(contrast_markdown(contrast, n))
    if args.csv:
        atomic_write_text(Path(args.csv), contrast.table.to_csv(index=False, float_format="%.6g"))
        print(f"wrote {args.csv}")


def page_settings(handle: Any, summary: Any) -> Dict[str, str]:
    r"""The run's facts the HTML page states under its title: model, explained target, times."""
    manifest = handle.manifest
    model = manifest.get("model", {})
    run = manifest.get("run", {})
    facts = {
        "model": f"{model.get('class', '?')} from {model.get('path') or 'memory'} "
        f"(weights {model.get('weights_digest', '?')})",
        "explained": f"target {manifest.get('settings', {}).get('target')}",
    }
    if run.get("seconds") is not None:
        facts["attribution"] = f"{run['seconds']:.1f} s ({run.get('world_size', 1)} process(es))"
    seconds = getattr(summary, "verify_seconds", None)
    if seconds is not None:
        facts["verification"] = "read from the cache" if summary.cached else f"{seconds:.1f} s"
    return facts
