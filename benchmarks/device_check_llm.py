"""GPU check of LLMNormXLogit: equality on CUDA and under an accelerate GPU/CPU split, and cost
against Captum's LLM attributions.

Needs CUDA, torch, transformers, accelerate, captum and a SmolLM2 tokenizer folder
(``tokenizer.json`` + ``tokenizer_config.json``; ``--tokenizer DIR``). The model is a Llama with
SmolLM2-135M's configuration and random weights (the real weights are too large to ship to the
device machine), so the numbers are about cost and equality, not about what the model says.

1. Equality: ``LLMNormXLogit.attribute_batch`` (two prompts of different lengths, teacher-forced
   targets) on CUDA, and on the model whose blocks are split between cuda:0 and the CPU by
   ``accelerate.dispatch_model``, against the same model on the CPU; hooks left afterwards.
2. Cost on the GPU: a 200-token prompt and a 20-token teacher-forced target, median time and
   ``torch.cuda.max_memory_allocated`` above the resident model, for a bare forward pass over
   prompt + target, LLMNormXLogit, Captum's LLMGradientAttribution(LayerIntegratedGradients)
   (n_steps 50, internal batch 50) and LLMAttribution(FeatureAblation); the two Captum methods run
   once (after the others have warmed the GPU), the rest 10 times.

Usage: python benchmarks/device_check_llm.py --tokenizer DIR [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
import transformers as T
from accelerate import dispatch_model
from captum.attr import (
    FeatureAblation,
    LayerIntegratedGradients,
    LLMAttribution,
    LLMGradientAttribution,
    TextTokenInput,
)

from captum_normxlogit import LLMNormXLogit, NormXLogit

TEXT = (
    "The film opens on a quiet harbour town where nothing much happens, and for a while the camera is "
    "content to watch fishermen mend their nets, children chase gulls along the pier and an old woman "
    "sell bread from a cart. "
)


def _config() -> T.LlamaConfig:  # SmolLM2-135M's shape
    return T.LlamaConfig(
        vocab_size=49152,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=8192,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        pad_token_id=2,
        bos_token_id=1,
        eos_token_id=2,
    )


def _model(device: str = "cpu") -> T.LlamaForCausalLM:
    torch.manual_seed(0)
    return T.LlamaForCausalLM(_config()).eval().to(device)


def check_equality(tok) -> dict:
    prompts = ["The capital of France is", "In the quiet harbour town the old woman sold bread and"]
    targets = [" Paris, of course.", " fish to the sailors"]
    cpu = _model()
    ref = LLMNormXLogit(NormXLogit(cpu), tok).attribute_batch(prompts, targets)
    out = {}
    gpu = _model("cuda")
    got = LLMNormXLogit(NormXLogit(gpu), tok).attribute_batch(prompts, targets)
    out["cuda_max_abs_diff"] = max(float((g.token_attr.cpu() - r.token_attr).abs().max()) for g, r in zip(got, ref))
    out["reference_max_abs"] = max(float(r.token_attr.abs().max()) for r in ref)
    del gpu
    split = _model()
    device_map = {"model.embed_tokens": 0, "model.rotary_emb": 0, "model.norm": "cpu", "lm_head": 0}
    device_map.update({f"model.layers.{i}": 0 if i < 15 else "cpu" for i in range(30)})
    split = dispatch_model(split, device_map=device_map)
    got = LLMNormXLogit(NormXLogit(split), tok).attribute_batch(prompts, targets)
    out["device_map_max_abs_diff"] = max(
        float((g.token_attr.cpu() - r.token_attr).abs().max()) for g, r in zip(got, ref)
    )
    out["hooks_left"] = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in split.modules())
    return out


def _measure(fn, repeats: int) -> tuple:
    if repeats > 1:
        fn()  # warm-up: kernels, allocator (the slow methods run once, after the others warmed the GPU)
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    return statistics.median(times), peak


def bench(tok, prompt_tokens: int = 200, new_tokens: int = 20, feature_ablation: bool = True) -> dict:
    model = _model("cuda")
    ids = tok.encode(TEXT * 8, add_special_tokens=False)
    prompt = tok.decode(ids[:prompt_tokens])
    target_ids = tok.encode(TEXT * 2, add_special_tokens=False)[50 : 50 + new_tokens]
    target = torch.tensor(target_ids)
    inp = TextTokenInput(prompt, tok)
    full = torch.tensor([tok.encode(prompt, add_special_tokens=False) + target_ids], device="cuda")
    llm_nx = LLMNormXLogit(NormXLogit(model), tok)
    lig = LLMGradientAttribution(LayerIntegratedGradients(model, model.model.embed_tokens), tok)
    fa = LLMAttribution(FeatureAblation(model), tok)

    def forward():
        with torch.no_grad():
            model.model(full)

    rows = {
        "bare forward (prompt + target, no_grad)": (forward, 10),
        "LLMNormXLogit": (lambda: llm_nx.attribute(inp, target=target), 10),
        "LLMGradientAttribution(LayerIntegratedGradients), 50 steps": (
            lambda: lig.attribute(inp, target=target, n_steps=50, internal_batch_size=50),
            1,
        ),
    }
    if feature_ablation:  # one ablated pass per prompt token: minutes even on a GPU
        rows["LLMAttribution(FeatureAblation)"] = (lambda: fa.attribute(inp, target=target), 1)
    results = {}
    for name, (fn, repeats) in rows.items():
        seconds, mib = _measure(fn, repeats)
        results[name] = {"seconds": seconds, "peak_mib": mib, "repeats": repeats}
        print(f"{name}: {seconds * 1000:.1f} ms, {mib:.0f} MiB", flush=True)
    return {"prompt_tokens": len(inp.values), "target_tokens": len(target_ids), "rows": results}


def _markdown(eq: dict, cost: dict, device: str) -> str:
    rows = cost["rows"]
    nx = rows["LLMNormXLogit"]
    fwd = rows["bare forward (prompt + target, no_grad)"]
    lines = [
        f"# LLMNormXLogit on {device}",
        "",
        f"torch {torch.__version__}, transformers {T.__version__}; Llama with SmolLM2-135M's configuration, "
        "random weights, fp32. Output of `benchmarks/device_check_llm.py`.",
        "",
        "## Equality with the CPU (token_attr of two prompts, teacher-forced)",
        "",
        f"- CUDA: max abs difference {eq['cuda_max_abs_diff']:.2e} (largest |score| {eq['reference_max_abs']:.1f})",
        f"- accelerate device_map (blocks 0-14, embeddings, head on cuda:0; blocks 15-29 and the final norm "
        f"on the CPU): max abs difference {eq['device_map_max_abs_diff']:.2e}; forward hooks left: {eq['hooks_left']}",
        "",
        f"## Cost: {cost['prompt_tokens']}-token prompt, {cost['target_tokens']}-token target",
        "",
        "| method | median time (ms) | / bare forward | / LLMNormXLogit | peak CUDA memory (MiB) | / LLMNormXLogit |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['seconds'] * 1000:.1f} | {r['seconds'] / fwd['seconds']:.2f}x | "
            f"{r['seconds'] / nx['seconds']:.1f}x | {r['peak_mib']:.0f} | "
            f"{r['peak_mib'] / max(nx['peak_mib'], 1e-9):.1f}x |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", required=True, help="folder with SmolLM2's tokenizer.json")
    parser.add_argument("--no-feature-ablation", action="store_true", help="skip the slowest Captum method")
    parser.add_argument("--out", default=os.environ.get("OUT", "."), help="where to write the Markdown and JSON")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        parser.error("needs a CUDA device")
    tok = T.AutoTokenizer.from_pretrained(args.tokenizer)
    eq = check_equality(tok)
    print(json.dumps(eq), flush=True)
    cost = bench(tok, feature_ablation=not args.no_feature_ablation)
    device = torch.cuda.get_device_name(0)
    text = _markdown(eq, cost, device)
    print(text)
    with open(os.path.join(args.out, "device_check_llm.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "device_check_llm.json"), "w") as f:
        json.dump({"equality": eq, "cost": cost, "device": device}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
