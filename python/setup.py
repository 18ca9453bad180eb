"""The wheel carries libcompeft.so, a native library loaded with ctypes (not a CPython extension), so it
is tagged for the platform but for any Python 3: py3-none-<platform>. Everything else is pyproject.toml."""

import os
import sysconfig

from setuptools import setup
from setuptools.dist import Distribution

LIBRARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "src", "compeft", "libcompeft.so")
if not os.path.exists(LIBRARY):
    raise SystemExit(
        f"compeft: {LIBRARY} is missing; build it first with scripts/build-python-wheel.sh "
        "(which builds the library and the wheel), then install the wheel or this folder"
    )


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return True


commands = {}
try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]


class PlatformWheel(bdist_wheel):
    def get_tag(self):
        return "py3", "none", sysconfig.get_platform().replace("-", "_").replace(".", "_")


commands["bdist_wheel"] = PlatformWheel

setup(distclass=BinaryDistribution, cmdclass=commands)
