from pathlib import Path

from setuptools import find_packages, setup

version = {}
exec(Path(__file__).with_name("nsprog").joinpath("_version.py").read_text(), version)

setup(
    name="nsprog",
    version=version["__version__"],
    description="Neurosymbolic trajectory encoders (nsprog) and program-supervised TREBA embeddings (trebalink)",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["nsprog", "nsprog.*", "trebalink", "trebalink.*"]),
    package_data={"nsprog": ["dsl/definitions/*.yaml", "native/*.c"], "trebalink": ["programs/*.json"]},
    install_requires=[
        "torch>=2.1",
        "numpy",
        "scikit-learn",
        "h5py",
        "pyyaml",
        "seaborn",
        "tqdm",
        "threadpoolctl",
    ],
    extras_require={
        "dev": ["pytest", "hypothesis"],
        # nsprog table --backend submitit: table cells as SLURM jobs (or submitit's local executor)
        "cluster": ["submitit>=1.5"],
    },
    entry_points={
        "console_scripts": [
            "nsprog=nsprog.cli:main",
            "trebalink=trebalink.cli:main",
        ]
    },
)
