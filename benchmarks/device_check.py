"""GPU check: NormXLogit on CUDA and on a model split across GPU and CPU by accelerate.

Needs a CUDA machine with torch, transformers, accelerate and captum. Random-weight
models built from configs (no download). Prints, and writes to --out:

1. equality: NormXLogit on the GPU, and on a Llama whose blocks are split between
   cuda:0 and the CPU by ``accelerate.dispatch_model(device_map=...)``, equals the
   same model on the CPU (left-padded batch, every layer, forward_func too);
2. cost on the GPU (BERT-base-sized random classifier, 16 x 128 tokens): median
   time and ``torch.cuda.max_memory_allocated`` above the resident model and
   inputs, for a bare forward, NormXLogit, all layers, IG (50 steps,
   internal_batch_size 128), Saliency, InputXGradient.

Usage: python benchmarks/device_check.py [--out DIR]
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
from captum.attr import InputXGradient, IntegratedGradients, Saliency

from captum_normxlogit import NormXLogit
from captum_normxlogit.utils import pad_batch


def _left_padded(vocab: int, lengths=(24, 17, 30), seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return pad_batch([torch.randint(5, vocab, (n,), generator=g) for n in lengths], 0, side="left")


def check_sharded() -> dict:
    torch.manual_seed(0)
    config = T.LlamaConfig(
        vocab_size=32000,
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=4,
        intermediate_size=512,
        pad_token_id=0,
    )
    cpu_model = T.LlamaForCausalLM(config).eval()
    ids, mask = _left_padded(config.vocab_size)
    reference = NormXLogit(cpu_model).attribute_all_layers(ids, additional_forward_args=(mask,))
    reference_logits = NormXLogit(cpu_model).forward_func(ids, mask).detach()

    results = {}
    gpu_model = T.LlamaForCausalLM(config).eval()
    gpu_model.load_state_dict(cpu_model.state_dict())
    gpu_model.to("cuda")
    nx = NormXLogit(gpu_model)
    got = nx.attribute_all_layers(ids.cuda(), additional_forward_args=(mask.cuda(),)).cpu()
    results["cuda_max_abs_diff"] = float((got - reference).abs().max())

    split = T.LlamaForCausalLM(config).eval()
    split.load_state_dict(cpu_model.state_dict())
    device_map = {
        "model.embed_tokens": 0,
        "model.layers.0": 0,
        "model.layers.1": 0,
        "model.layers.2": "cpu",
        "model.layers.3": "cpu",
        "model.norm": "cpu",
        "model.rotary_emb": 0,
        "lm_head": 0,
    }
    split = dispatch_model(split, device_map=device_map)
    nx = NormXLogit(split)
    got = nx.attribute_all_layers(ids, additional_forward_args=(mask,)).cpu()
    logits = nx.forward_func(ids, mask).detach().cpu()
    results["device_map_max_abs_diff"] = float((got - reference).abs().max())
    results["device_map_forward_func_max_abs_diff"] = float((logits - reference_logits).abs().max())
    results["hooks_left"] = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in split.modules())
    return results


def bench_gpu(repeats: int = 20) -> dict:
    torch.manual_seed(0)
    config = T.BertConfig(num_labels=2)  # type: ignore[call-arg]  # bert-base sizes, random weights
    model = T.BertForSequenceClassification(config).eval().cuda()
    ids = torch.randint(1000, 30000, (16, 128), device="cuda")
    mask = torch.ones_like(ids)
    nx = NormXLogit(model)
    target = nx.forward_func(ids, mask).argmax(-1)
    embeds = model.get_input_embeddings()(ids).detach()

    def forward():
        with torch.no_grad():
            return model(input_ids=ids, attention_mask=mask).logits

    def grad(method):
        return lambda: method.attribute(embeds.clone().requires_grad_(), target=target, additional_forward_args=(mask,))

    methods = {
        "forward": forward,
        "normxlogit": lambda: nx.attribute(ids, target=target, additional_forward_args=(mask,)),
        "normxlogit_all_layers": lambda: nx.attribute_all_layers(ids, target=target, additional_forward_args=(mask,)),
        "ig": lambda: IntegratedGradients(nx.forward_func).attribute(
            embeds, target=target, additional_forward_args=(mask,), n_steps=50, internal_batch_size=128
        ),
        "saliency": grad(Saliency(nx.forward_func)),
        "input_x_gradient": grad(InputXGradient(nx.forward_func)),
    }
    out = {}
    for name, fn in methods.items():
        fn()
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
        times = []
        for _ in range(repeats if name != "ig" else 5):
            torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        out[name] = {"median_s": statistics.median(times), "peak_mib": peak / 2**20}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "out"))
    args = parser.parse_args()
    sharded = check_sharded()
    cost = bench_gpu()
    report = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "transformers": T.__version__,
        "sharded": sharded,
        "gpu_cost": cost,
    }
    lines = [
        f"{report['device']}, torch {report['torch']}, transformers {report['transformers']}",
        "",
        "| method | median time (ms) | / bare forward | peak CUDA memory above resident (MiB) | / NormXLogit |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in cost.items():
        lines.append(
            f"| {name} | {row['median_s'] * 1000:.2f} | {row['median_s'] / cost['forward']['median_s']:.2f}x | "
            f"{row['peak_mib']:.1f} | {row['peak_mib'] / cost['normxlogit']['peak_mib']:.1f}x |"
        )
    text = json.dumps(report, indent=2) + "\n\n" + "\n".join(lines)
    print(text)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "device_check.md"), "w") as handle:
        handle.write(text + "\n")


if __name__ == "__main__":
    main()
