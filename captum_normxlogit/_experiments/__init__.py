r"""Evaluation experiments on real models, run by ``normxlogit evaluate``.

Each task is a function ``run_*(*, limit=None, ig_steps=..., batch_size=..., device="cpu",
progress=True)`` returning an object with ``.table`` (a pandas DataFrame) and
``.write(output_dir) -> list[Path]``:

- :func:`.sentiment.run_sentiment_minilm` (``sentiment-minilm``) and
  :func:`.sentiment.run_sentiment_smollm2` (``sentiment-smollm2``): faithfulness
  of every method on the held-out Rotten-Tomatoes sentences;
- :func:`.agreement.run_agreement` (``agreement-smollm2``): evidence alignment.
"""
