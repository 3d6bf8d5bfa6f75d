r"""The repository's studies: runs on real and planted models whose tables are committed under
``benchmarks/results/``. Not part of the package (not in the wheel); each study is run from the
repository root as ``python -m studies.<name>`` (``make dataset`` runs :mod:`studies.dataset_summary`).

A study imports only public names of ``captum_normxlogit`` (a missing one is added to the package,
with a docstring); helpers shared by several studies live in :mod:`studies.common`, never as private
names passed between study files.
"""
