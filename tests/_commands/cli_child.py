"""Runs `normxlogit` cases in this fresh process, for the ones a test process cannot host: a file-size
limit (a full disk, `RLIMIT_FSIZE`; the entry point ignores SIGXFSZ, so that a write raises EFBIG) or no root override
of file permissions (the parent drops those capabilities before exec).

Reads `[{"argv": [...], "fsize": int or null, "remove": [paths], "list": folder}, ...]` as JSON on stdin
(`remove`: files deleted before the case; `list`: a folder whose names are reported after it) and writes
one `{"code", "out", "err", "listed"}` per case as JSON on stdout (a pipe: the size limit does not apply).
"""

import contextlib
import io
import json
import os
import resource
import sys
import traceback


def run(cases):
    from captum_normxlogit.cli import main

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    results = []
    for case in cases:
        for path in case.get("remove", []):
            os.unlink(path)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            if case.get("fsize") is not None:
                resource.setrlimit(resource.RLIMIT_FSIZE, (case["fsize"], hard))
            try:
                code = main(case["argv"])
            except SystemExit as stop:
                code = stop.code  # type: ignore[assignment]  # main exits with an int code
            except BaseException:  # noqa: BLE001 - reported to the test, which fails on it
                code, _ = None, err.write(traceback.format_exc())
            finally:
                resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        listed = sorted(os.listdir(case["list"])) if case.get("list") else None
        results.append({"code": code, "out": out.getvalue(), "err": err.getvalue(), "listed": listed})
    return results


if __name__ == "__main__":
    sys.stdout.write(json.dumps(run(json.loads(sys.stdin.read()))))
