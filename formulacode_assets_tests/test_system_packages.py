"""The conda-key / build-need → Debian package table, and the install analysis keeping conda keys out of pip."""

from datetime import UTC, datetime

from formulacode_assets.core.environments.install_analysis import relaxation_steps
from formulacode_assets.core.environments.system_packages import is_conda_only, system_packages_for


def test_conda_libraries_and_build_needs_map_to_debian_packages():
    found = system_packages_for(["geos", "HDF5", "proj", "pip+fftw", "openblas", "libjpeg", "zlib", "cmake"])
    assert found.packages == (
        "cmake",
        "libfftw3-dev",
        "libgeos-dev",
        "libhdf5-dev",
        "libjpeg-dev",
        "libopenblas-dev",
        "libproj-dev",
        "proj-bin",
        "zlib1g-dev",
    )
    assert found.by_name["hdf5"] == ("libhdf5-dev",) and found.by_name["fftw"] == ("libfftw3-dev",)
    # compilers are in the toolchain image; pure-PyPI names need nothing
    assert system_packages_for(["compilers", "c-compiler", "numpy", "cython", "asv"]).packages == ()
    # PyPI packages that build against a library (requirement strings accepted): both stay pip's
    assert system_packages_for(["shapely>=2", "h5py==3.10", "pkg-config"]).packages == (
        "libgeos-dev",
        "libhdf5-dev",
        "pkg-config",
    )
    assert is_conda_only("geos") and is_conda_only("Compilers") and not is_conda_only("shapely")


def test_conda_only_matrix_keys_are_not_pip_requirements():
    steps = relaxation_steps(
        ["numpy>=1.20"], {"geos": "", "compilers": "", "shapely": "2.0"}, datetime(2024, 1, 1, tzinfo=UTC)
    )
    for name, requirements, _, _ in steps:
        assert not any(r.split("=")[0] in ("geos", "compilers") for r in requirements), (name, requirements)
    assert steps[0][1] == ["numpy>=1.20", "shapely==2.0"]
