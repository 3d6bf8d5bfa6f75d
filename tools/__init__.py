"""Checks the project runs on itself (not part of the installed package)."""
