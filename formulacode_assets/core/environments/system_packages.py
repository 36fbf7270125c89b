"""Debian packages a build needs: conda-only asv matrix keys and known build needs, by name.

asv configs written for conda name C libraries and tools (``geos``, ``hdf5``, ``compilers``) in
their matrix; they are no PyPI packages (PyPI's ``geos`` is an unrelated web app), so the install
analysis drops them from pip and the Docker validator installs their Debian counterparts with apt.
Some PyPI packages (``shapely``, ``h5py``) build from source at old commits and need a library's
headers: those stay pip requirements and add their Debian package too. Names not in either table
need nothing. Package names are Debian bookworm's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from packaging.requirements import InvalidRequirement, Requirement

# conda package → Debian packages; () = nothing beyond the toolchain image (gcc, g++, make, headers).
CONDA_ONLY: dict[str, tuple[str, ...]] = {
    "geos": ("libgeos-dev",),
    "hdf5": ("libhdf5-dev",),
    "proj": ("libproj-dev", "proj-bin"),
    "libgdal": ("libgdal-dev",),
    "fftw": ("libfftw3-dev",),
    "openblas": ("libopenblas-dev",),
    "libopenblas": ("libopenblas-dev",),
    "blas": ("libopenblas-dev",),
    "lapack": ("liblapack-dev",),
    "libjpeg-turbo": ("libjpeg-dev",),
    "jpeg": ("libjpeg-dev",),
    "libjpeg": ("libjpeg-dev",),
    "libpng": ("libpng-dev",),
    "zlib": ("zlib1g-dev",),
    "bzip2": ("libbz2-dev",),
    "xz": ("liblzma-dev",),
    "lz4-c": ("liblz4-dev",),
    "zstd": ("libzstd-dev",),
    "snappy": ("libsnappy-dev",),
    "blosc": ("libblosc-dev",),
    "libnetcdf": ("libnetcdf-dev",),
    "libxml2": ("libxml2-dev",),
    "libxslt": ("libxslt1-dev",),
    "libffi": ("libffi-dev",),
    "openssl": ("libssl-dev",),
    "sqlite": ("libsqlite3-dev",),
    "libcurl": ("libcurl4-openssl-dev",),
    "boost": ("libboost-dev",),
    "boost-cpp": ("libboost-dev",),
    "eigen": ("libeigen3-dev",),
    "tbb": ("libtbb-dev",),
    "tbb-devel": ("libtbb-dev",),
    "gmp": ("libgmp-dev",),
    "mpfr": ("libmpfr-dev",),
    "suitesparse": ("libsuitesparse-dev",),
    "cmake": ("cmake",),
    "make": (),
    "pkg-config": ("pkg-config",),
    "swig": ("swig",),
    "compilers": (),
    "c-compiler": (),
    "cxx-compiler": (),
    "gcc": (),
    "gxx": (),
    "fortran-compiler": ("gfortran",),
    "gfortran": ("gfortran",),
    "libgfortran": ("gfortran",),
}

# PyPI package → Debian packages its source build needs (the pip requirement stays).
BUILD_NEEDS: dict[str, tuple[str, ...]] = {
    "shapely": ("libgeos-dev",),
    "pygeos": ("libgeos-dev",),
    "cartopy": ("libgeos-dev", "libproj-dev", "proj-bin"),
    "pyproj": ("libproj-dev", "proj-bin"),
    "gdal": ("libgdal-dev",),
    "fiona": ("libgdal-dev",),
    "rasterio": ("libgdal-dev",),
    "h5py": ("libhdf5-dev",),
    "tables": ("libhdf5-dev",),
    "netcdf4": ("libnetcdf-dev", "libhdf5-dev"),
    "pyfftw": ("libfftw3-dev",),
    "lxml": ("libxml2-dev", "libxslt1-dev"),
    "psycopg2": ("libpq-dev",),
    "pillow": ("libjpeg-dev", "zlib1g-dev"),
    "pkgconfig": ("pkg-config",),
    "gmpy2": ("libgmp-dev", "libmpfr-dev", "libmpc-dev"),
}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip().removeprefix("pip+")).lower()


def is_conda_only(name: str) -> bool:
    """A matrix key that names a conda library or tool, not a PyPI package (pip must not install it)."""
    return _canonical(name) in CONDA_ONLY


@dataclass(frozen=True)
class SystemPackages:
    packages: tuple[str, ...]  # sorted, unique: what apt installs
    by_name: dict[str, tuple[str, ...]] = field(default_factory=dict)  # which name asked for which


def system_packages_for(names: Iterable[str]) -> SystemPackages:
    """The Debian packages for matrix keys / requirement names (requirement strings are accepted)."""
    by_name: dict[str, tuple[str, ...]] = {}
    for raw in names:
        try:
            name = _canonical(Requirement(raw).name)
        except InvalidRequirement:
            name = _canonical(raw)
        wanted = CONDA_ONLY.get(name, BUILD_NEEDS.get(name))
        if wanted:
            by_name[name] = wanted
    return SystemPackages(tuple(sorted({p for wanted in by_name.values() for p in wanted})), by_name)


def system_packages_for_analysis(analysis) -> SystemPackages:
    """What an install analysis needs from the system: its asv matrix keys and build requirements."""
    return system_packages_for([*analysis.settings.matrix, *analysis.package.get("build_requires", [])])
