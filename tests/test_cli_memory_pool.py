"""The CLI process puts Arrow on the system allocator (mimalloc keeps freed shard buffers, so a long
attribute-dataset run's memory crept), unless the user chose a pool."""

import os
import subprocess
import sys

SCRIPT = """
import os, sys
from captum_normxlogit.cli import main
assert main([]) == 0  # prints the help
import pyarrow as pa
print(os.environ.get("ARROW_DEFAULT_MEMORY_POOL"), pa.default_memory_pool().backend_name)
"""


def _run(**env):
    base = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env={**base, **env}, capture_output=True, text=True, check=True
    )
    return out.stdout.split()[-2:]


def test_the_cli_process_uses_the_system_pool():
    assert _run() == ["system", "system"]


def test_a_pool_the_user_chose_is_kept():
    assert _run(ARROW_DEFAULT_MEMORY_POOL="jemalloc")[0] == "jemalloc"
