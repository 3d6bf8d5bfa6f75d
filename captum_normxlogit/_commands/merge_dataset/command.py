r"""``normxlogit merge-dataset FOLDER... --output DIR``: combine the per-node folders of one run."""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]

_DESCRIPTION = """\
Combine the per-node output folders of ONE attribute-dataset run whose nodes did not share a filesystem
(each node wrote its ranks' shards into its own --output; the node of rank 0 also wrote the manifest,
listing every shard with its checksum). Copy the folders to one machine first. The manifests must agree
(same settings, model, tokenizer and data), every listed shard must be found sound with its listed
checksum, and a shard found twice must be the same; anything else is refused and nothing is written.
The inputs are not changed; --output must be a new or empty folder.
"""

_EPILOG = """\
examples:
  normxlogit merge-dataset node0/out node1/out --output out/merged
"""


def register(commands: "argparse._SubParsersAction") -> None:
    cmd = commands.add_parser(
        "merge-dataset",
        help="combine the per-node folders of one attribute-dataset run (no shared filesystem)",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument("folders", metavar="FOLDER", nargs="+", help="the nodes' output folders of one run")
    cmd.add_argument("--output", metavar="DIR", required=True, help="a new or empty folder for the merged run")
    cmd.set_defaults(run=_run)


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from captum_normxlogit.dataset import MANIFEST_NAME, merge_attributions

    try:
        result = merge_attributions(args.folders, args.output)
    except (ValueError, RuntimeError, OSError) as error:
        print(f"normxlogit merge-dataset: error: {error}", file=sys.stderr)
        return 2
    counts = result.counts()
    print(
        f"merged {counts['rows']:,} rows ({counts['skipped']:,} skipped) in {counts['shards']} Parquet shards "
        f"from {len(args.folders)} folders into {result.output_dir} (manifest: {result.output_dir / MANIFEST_NAME})"
    )
    return 0
