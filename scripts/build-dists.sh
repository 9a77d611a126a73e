#!/usr/bin/env bash
# Build a wheel and an sdist of every flexlock distribution into dist/ and check them:
# `twine check` (metadata renders), `check-wheel-contents` (no stray or duplicate files),
# and no `file:` or other direct reference in any built metadata (an index rejects them
# and they install nowhere else). Then: pip install --find-links dist "flexlock[all]".
#
#   scripts/build-dists.sh            # uses .venv/bin/python (PYTHON=... to override)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
OUT=${DIST_DIR:-dist}
"$PYTHON" -m pip install -q --disable-pip-version-check build twine check-wheel-contents
rm -rf "$OUT" && mkdir -p "$OUT"
for folder in flexlock-core flexlock-cli flexlock-mlflow flexlock-slurm .; do
  "$PYTHON" -m build -q --outdir "$OUT" "$folder" >/dev/null
done
"$PYTHON" -m twine check --strict "$OUT"/*
"$PYTHON" -m check_wheel_contents "$OUT"/flexlock_*.whl
# The meta wheel is empty on purpose (requirements only): W007/W008 say exactly that.
"$PYTHON" -m check_wheel_contents --ignore W007,W008 "$OUT"/flexlock-[0-9]*.whl
"$PYTHON" - "$OUT" <<'PY'
import sys, tarfile, zipfile
from email.parser import HeaderParser
from pathlib import Path

bad = []
for path in sorted(Path(sys.argv[1]).iterdir()):
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as whl:
            name = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
            text = whl.read(name).decode()
    else:
        with tarfile.open(path) as sdist:
            member = next(m for m in sdist.getmembers() if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO"))
            text = sdist.extractfile(member).read().decode()
    for requirement in HeaderParser().parsestr(text).get_all("Requires-Dist") or []:
        if " @ " in requirement or "file:" in requirement:
            bad.append(f"{path.name}: Requires-Dist: {requirement}")
if bad:
    sys.exit("direct references in built metadata (use plain == pins):\n" + "\n".join(bad))
print(f"dist ok: {len(list(Path(sys.argv[1]).iterdir()))} files, plain requirements only")
PY
