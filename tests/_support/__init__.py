"""The one home of the tests' helpers: tiny models, their batches, saved model folders, tokenizers, hook counts.

- `tiny`: two small random models (BERT classifier, Llama LM) and `batch()` for behaviour tests.
- `families`: one seeded tiny model per supported family (`FACTORIES`, `SPECS`, `build`), `make_batch()`,
  for the reference-equality and property suites; names each model's blocks without the package's adapter.
- `saved`: tiny models with small local tokenizers, saved to folders for the CLI and dataset tests.
- `tokenizers`: byte-level BPE and word-level tokenizers built in memory.
- `hooks`: `hook_count(model)`, how every "no hook left behind" test counts hooks.

Shared fixtures built from these live in tests/conftest.py. Nothing here imports `captum_normxlogit`.
"""
