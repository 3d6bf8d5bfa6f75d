r"""Plausibility against human evidence (being written)."""
__all__: list = []
