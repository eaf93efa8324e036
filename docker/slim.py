"""Make the action's image small; the Dockerfile runs this while it builds the image (docs/CONTAINER.md).

``slim.py venv DIR`` (build stage, where binutils' ``strip`` is installed, before ci-perf itself goes
in): the locked dependencies lose their test suites, the files that only serve building against them
(headers, Cython sources, static libraries, type stubs) and all bytecode; their ELF objects are
stripped, and identical files become hard links of one another.

``slim.py base`` (a stage of the bare base, copied whole into the final image, so that what it deletes
is gone): the base loses what ``ci-perf action`` never uses: Debian packages for package management,
logins and disks; documentation, Perl, glibc's iconv modules, Python's IDLE, 2to3, ensurepip, the
base's own pip, and the standard library's bytecode.

``slim.py bytecode VENV`` (final stage): bytecode for exactly the modules that ci-perf, its probe and
its Locust process import, standard library included. A module not in that list still works: Python
compiles it when it is imported (and writes nothing, PYTHONDONTWRITEBYTECODE).

Standard library only: it runs on the base's own interpreter, before and beside the venv.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import py_compile
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

# Folders that hold a dependency's own test suite (numpy, scipy, gevent, zope, zmq, greenlet...).
TEST_FOLDERS = frozenset({"tests", "test"})
# Only for compiling against a package, never read when importing it.
BUILD_ONLY_SUFFIXES = frozenset({".pyi", ".pyx", ".pxd", ".pxi", ".c", ".cc", ".cpp", ".h", ".hpp", ".a"})
# auditwheel's vendored libraries (numpy.libs/, scipy.libs/...) were edited with patchelf; GNU strip
# rewrites their program headers and the loader then refuses them ("ELF load command address/offset
# not page-aligned", seen with numpy's OpenBLAS). They are left as they are.
VENDORED_LIBRARY_FOLDER_SUFFIX = ".libs"
ELF_MAGIC = b"\x7fELF"

# Debian packages of the base that `ci-perf action` never uses: package management, logins, disks.
# dpkg purges them without --force-depends, so it keeps any that a package staying still needs.
# Perl stays registered: debconf needs it to be installed, though its files go (below).
UNUSED_PACKAGES = frozenset(
    {
        *("apt", "libapt-pkg6.0", "gpgv", "debian-archive-keyring", "adduser"),
        *("libgnutls30", "libunistring2", "libp11-kit0", "libtasn1-6", "libnettle8", "libhogweed6", "libidn2-0"),
        *("libxxhash0", "e2fsprogs", "logsave", "libext2fs2", "libss2", "login", "passwd", "libsemanage2"),
        *("libsepol2", "libsemanage-common", "util-linux", "util-linux-extra", "mount", "libsmartcols1"),
        *("libfdisk1", "sysvinit-utils", "bsdutils", "libsystemd0", "libgcrypt20", "libgpg-error0", "liblz4-1"),
        *("libcap2", "libudev1", "libmount1", "libblkid1", "libaudit1", "libaudit-common", "libcap-ng0"),
        *("libpam-modules", "libpam-modules-bin", "libpam-runtime", "libpam0g", "ncurses-bin"),
        # Debian's ensurepip and what it installs: the venv exists and has no pip
        *("python3-venv", "python3-pip-whl", "python3-setuptools-whl", "python3-distutils", "python3-lib2to3"),
    }
)

# What the base has and `ci-perf action` never uses, beside packages; globs from /, for Debian's and the
# official image (which has its Python in /usr/local, outside dpkg).
BASE_EXTRAS = (
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",  # message catalogs of the base's command-line tools
    "usr/share/lintian",
    "usr/lib/*/gconv",  # glibc's iconv modules: Python has codecs of its own
    "usr/bin/perl*",  # Perl only runs dpkg's and debconf's scripts: nothing is installed at run time
    "usr/lib/*/perl*",
    "usr/share/perl*",
    "var/lib/apt",
    "var/cache/*",
    "var/log/*",
    "usr/local/bin/pip*",  # the official image's pip: the venv was made without it
    "usr/local/lib/python3*/site-packages/pip*",
    "usr/local/lib/python3*/site-packages/setuptools*",
    "usr/local/lib/python3*/site-packages/wheel*",
    *(
        f"usr/{prefix}lib/python3*/{module}"
        for prefix in ("", "local/")
        for module in ("idlelib", "lib2to3", "tkinter", "turtledemo", "ensurepip", "pydoc_data", "test")
    ),
)

# Run by the venv's python: what ci-perf, its probe and its Locust process import, then the scipy.stats
# functions that ci_perf.analysis.stats calls (they import more on first use) and Otava's analysis (the
# same). Locust comes first, as in Locust's own process: it monkey-patches the standard library with
# gevent. Prints the modules' files.
TRAINING = """
import importlib, json, pkgutil, sys
import locust, locust.main
import ci_perf
for module in pkgutil.walk_packages(ci_perf.__path__, "ci_perf."):
    importlib.import_module(module.name)
import scipy.stats
scipy.stats.t.ppf(0.9, 5), scipy.stats.t.sf(1.0, 5), scipy.stats.t.cdf(1.0, 5)
scipy.stats.norm.ppf(0.9), scipy.stats.norm.sf(1.0), scipy.stats.norm.cdf(1.0)
scipy.stats.fisher_exact([[3, 1], [1, 3]], alternative="greater")
scipy.stats.false_discovery_control([0.01, 0.2, 0.5], method="bh")
import otava.analysis  # change points on main (ci_perf.analysis.changepoints imports it on first use)
files = []
for module in list(sys.modules.values()):
    spec = getattr(module, "__spec__", None)
    origin = getattr(spec, "origin", None)
    if spec is not None and getattr(spec, "cached", None) and origin and origin.endswith(".py"):
        files.append(origin)
print(json.dumps(sorted(set(files))))
"""


def files_under(root: Path) -> Iterator[Path]:
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            if path.is_file() and not path.is_symlink():
                yield path


def remove(paths: Iterable[Path]) -> int:
    """Delete files and folders; returns the bytes freed."""
    freed = 0
    for path in paths:
        if path.is_symlink() or path.is_file():
            freed += path.lstat().st_size
            path.unlink()
        elif path.is_dir():
            freed += sum(file.stat().st_size for file in files_under(path))
            shutil.rmtree(path)
    return freed


def test_suites(site_packages: Path) -> list[Path]:
    """Top-most test folders inside packages (a folder inside a test folder goes with it)."""
    found: list[Path] = []
    for folder, subfolders, _ in os.walk(site_packages):
        for name in list(subfolders):
            if name in TEST_FOLDERS:
                found.append(Path(folder, name))
                subfolders.remove(name)
    return found


def is_elf(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(4) == ELF_MAGIC


def strippable(root: Path) -> list[Path]:
    """Our dependencies' compiled extensions, not auditwheel's vendored libraries."""
    return [
        path
        for path in files_under(root)
        if not any(part.endswith(VENDORED_LIBRARY_FOLDER_SUFFIX) for part in path.relative_to(root).parts)
        and is_elf(path)
    ]


def link_duplicates(root: Path) -> int:
    """Identical files (numpy's and scipy's copies of one libgfortran) become hard links; returns bytes saved."""
    by_size: defaultdict[int, list[Path]] = defaultdict(list)
    for path in files_under(root):
        by_size[path.stat().st_size].append(path)
    saved = 0
    for size, paths in by_size.items():
        if size == 0 or len(paths) < 2:
            continue
        first_of: dict[str, Path] = {}
        for path in paths:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if (first := first_of.setdefault(digest, path)) != path and not path.samefile(first):
                path.unlink()
                path.hardlink_to(first)
                saved += size
    return saved


def slim_venv(venv: Path) -> None:
    (site_packages,) = venv.glob("lib/python3*/site-packages")
    freed = remove(test_suites(site_packages))
    freed += remove([path for path in files_under(site_packages) if path.suffix in BUILD_ONLY_SUFFIXES])
    freed += remove(list(venv.rglob("__pycache__")))
    objects = strippable(site_packages)
    before = sum(path.stat().st_size for path in objects)
    subprocess.run(["strip", "--strip-unneeded", *map(str, objects)], check=True)
    freed += before - sum(path.stat().st_size for path in objects)
    freed += link_duplicates(site_packages)
    print(f"slim.py venv: {freed / 1e6:.1f} MB less in {venv}", flush=True)


def imported_modules(venv: Path) -> list[Path]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", TRAINING], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:  # a dependency broken by the slimming above must fail the build
        sys.exit(f"slim.py: importing what ci-perf imports failed:\n{done.stdout}{done.stderr}")
    return [Path(file) for file in json.loads(done.stdout.splitlines()[-1])]


def purge_unused_packages(root: Path) -> None:
    if shutil.which("dpkg-query") is None or root != Path("/"):
        return  # not a Debian base, or a test on a copy
    listed = subprocess.run(["dpkg-query", "-W", "-f=${Package}\\n"], capture_output=True, text=True, check=True)
    installed = set(listed.stdout.split())
    versioned_venv = {name for name in installed if name.startswith("python3.") and name.endswith("-venv")}
    if purge := sorted(installed & UNUSED_PACKAGES | versioned_venv):
        force = ["--force-remove-essential", "--force-remove-protected"]
        done = subprocess.run(["dpkg", "--purge", *force, *purge], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            # dpkg kept what another package still needs (a base other than the ones we build on):
            # a larger image, not a broken one; the container test's size check tells
            print(f"slim.py base: dpkg kept some packages:\n{done.stderr[-2000:]}", flush=True)


def slim_base(root: Path) -> None:
    purge_unused_packages(root)
    freed = remove([path for pattern in BASE_EXTRAS for path in root.glob(pattern)])
    docs = root / "usr/share/doc"  # the packages' licences stay
    freed += remove([path for path in files_under(docs) if path.name != "copyright"])
    python_roots = [*root.glob("usr/lib/python3*"), *root.glob("usr/local/lib/python3*")]
    freed += remove([cache for folder in python_roots for cache in folder.rglob("__pycache__")])
    print(f"slim.py base: {freed / 1e6:.1f} MB less, beside the packages purged", flush=True)


def compile_imported(venv: Path) -> None:
    modules = imported_modules(venv)
    for module in modules:
        # unchecked-hash: valid whatever the file times become when the image is copied or flattened
        py_compile.compile(str(module), doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    print(f"slim.py bytecode: for {len(modules)} imported modules", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["venv", "base", "bytecode"])
    parser.add_argument("venv", type=Path, nargs="?", default=Path("/opt/ci-perf"))
    parser.add_argument("--root", type=Path, default=Path("/"), help="the base's root (a copy, to try it)")
    args = parser.parse_args()
    if args.step == "venv":
        slim_venv(args.venv)
    elif args.step == "base":
        slim_base(args.root)
    else:
        compile_imported(args.venv)


if __name__ == "__main__":
    main()
