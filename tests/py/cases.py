"""The case runner of the Python tests (tests/py/test_*.py): one PASS, FAIL or SKIP line per case."""
import os
import sys
import tempfile
import traceback


def run_cases(program, cases, prefix):
    """cases: [(function of a fresh temporary folder, skip reason or None)], run in order; a failed case
    reports where it failed and the others still run. Exits with 1 when one failed, else 0."""
    failed = False
    for case, skip_reason in cases:
        name = f"{program}/{case.__name__}"
        if skip_reason:
            print(f"SKIP {name}: {skip_reason}")
            continue
        with tempfile.TemporaryDirectory(prefix=prefix) as work:
            try:
                case(work)
                print(f"PASS {name}")
            except Exception as e:
                where = traceback.extract_tb(e.__traceback__)[-1]
                print(f"FAIL {name}: {os.path.basename(where.filename)}:{where.lineno}: {type(e).__name__}: {e}")
                failed = True
    sys.exit(1 if failed else 0)
