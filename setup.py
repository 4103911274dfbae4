"""Build glue: the wheel installs yc_runs.py as the package ``yc_runs`` (``__init__.py``,
``py.typed``, ``__main__.py``), because PEP 561 gives a single-module distribution no way
to say it is typed. The repository keeps the one file people copy; the metadata is in
pyproject.toml."""

import os
import shutil

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))
STAGE = os.path.join("build", "package")  # relative: setuptools wants package_dir relative

package = os.path.join(HERE, STAGE, "yc_runs")
os.makedirs(package, exist_ok=True)
init = os.path.join(package, "__init__.py")
if os.path.lexists(init):
    os.remove(init)
try:  # a link keeps `pip install -e .` live; the wheel gets the file's contents either way
    os.symlink(os.path.join(os.pardir, os.pardir, os.pardir, "yc_runs.py"), init)
except (OSError, NotImplementedError):  # no symlinks here (Windows without the privilege)
    shutil.copyfile(os.path.join(HERE, "yc_runs.py"), init)
with open(os.path.join(package, "py.typed"), "w", encoding="utf-8"):
    pass  # PEP 561: an empty marker file
with open(os.path.join(package, "__main__.py"), "w", encoding="utf-8") as handle:
    handle.write('"""python -m yc_runs"""\n\nimport sys\n\nfrom yc_runs import main\n\n'
                 'sys.exit(main())\n')

setup(packages=["yc_runs"], package_dir={"": STAGE.replace(os.sep, "/")},
      package_data={"yc_runs": ["py.typed"]})
