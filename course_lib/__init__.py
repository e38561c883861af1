"""course_lib: the small RLlib that the course "Build your own RLlib" builds, lesson by lesson.

The top level stays cheap to import (no Ray, no torch); each concept lives in its own module.
"""

from importlib.metadata import PackageNotFoundError, version

from .cluster import init_ray
from .source import show

try:
    __version__ = version("course_lib")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+local"

__all__ = ["__version__", "init_ray", "show"]
