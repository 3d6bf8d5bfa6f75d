r"""Studies behind the committed results in ``benchmarks/results/`` (``python -m studies.<name>``)."""
