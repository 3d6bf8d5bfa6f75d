r"""Comprehensiveness, sufficiency and AOPC (being written)."""
__all__: list = []
