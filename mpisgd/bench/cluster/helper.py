"""The link emulator's compiled packet loop (``linkemu.c``): find it, or build it with the C compiler.

The pure-Python loop of :mod:`.emulator` adds about 10 microseconds of
interpreter time to the 40 or so that the kernel spends on every packet
(at 1 Gbit/s, 4 hosts send about 10,000 packets a second). ``linkemu.c`` is
the same loop in C (C standard library only). ``make install`` and ``pip install`` (setup.py)
build it next to this file; when it is missing there, the emulator builds
it on first use into a cache (``/run/mpisgd-cluster`` as root). Without a
C compiler the emulator falls back to the Python loop and says so in its
report (``engine``). The binary's name carries a hash of the source, so a
changed ``linkemu.c`` is rebuilt rather than a stale binary used.

``python -m mpisgd.bench.cluster.helper [DIR]`` builds it into DIR (default:
next to this file) and prints its path, or why it could not (status 0
either way: the fallback works). Only the standard library is imported, so
setup.py can load this file before the package is installed.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("linkemu.c")
ENGINE_ENV = "MPISGD_EMULATOR"  # "python": the pure-Python loop; "c": the compiled one or an error
ENGINES = ("auto", "c", "python")


def binary_name(source: Path = SOURCE) -> str:
    """``linkemu-<hash of the source>``: a changed source never runs an old binary."""
    return "linkemu-" + hashlib.sha256(source.read_bytes()).hexdigest()[:12]


def compile_command(compiler: str, source: Path, target: Path) -> list:
    return [compiler, "-O2", "-Wall", "-o", str(target), str(source), "-lm"]


def compiler():
    """The C compiler to use ($CC, then cc, gcc, clang), or None."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def build(directory: Path, source: Path = SOURCE):
    """Compile ``source`` into ``directory``; (path, None) or (None, why not)."""
    cc = compiler()
    if cc is None:
        return None, "no C compiler (cc, gcc or clang) found"
    directory = Path(directory)
    target = directory / binary_name(source)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(prefix=".linkemu-", dir=directory)
        os.close(handle)
    except OSError as error:
        return None, f"cannot write to {directory}: {error.strerror}"
    try:
        result = subprocess.run(compile_command(cc, source, Path(partial)), capture_output=True, text=True)
        if result.returncode:
            return None, f"{cc} failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}"
        os.chmod(partial, 0o755)
        os.replace(partial, target)  # atomic: two clusters building at once both end with a whole binary
        return target, None
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def cache_directory() -> Path:
    if os.geteuid() == 0:
        return Path("/run/mpisgd-cluster")
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mpisgd"


def find(build_if_missing: bool = True):
    """The compiled loop's path (built now if need be), or (None, why not): ``(path, reason)``."""
    engine = os.environ.get(ENGINE_ENV, "auto") or "auto"
    if engine not in ENGINES:
        return None, f"{ENGINE_ENV}={engine!r} is not one of {', '.join(ENGINES)}"
    if engine == "python":
        return None, f"{ENGINE_ENV}=python asks for the pure-Python loop"
    if not SOURCE.exists():
        return None, f"{SOURCE.name} is missing from the installed package"
    name = binary_name()
    for directory in (SOURCE.parent, cache_directory()):
        if os.access(directory / name, os.X_OK):
            return directory / name, None
    if not build_if_missing:
        return None, "not built"
    return build(cache_directory())


def main(argv) -> int:
    directory = Path(argv[0]) if argv else SOURCE.parent
    path, reason = build(directory)
    if path is None:
        print(f"link emulator helper not built ({reason}); the pure-Python loop will be used")
    else:
        print(f"link emulator helper built: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
