"""Packaging hook: ship the repository's specs/ inside the package.

The bundled specs live in the top-level specs/ folder (the project layout). A wheel
only carries package files, so building copies specs/*.yaml into cnncost/specs/ in
the build tree; `cnncost.api.specs_dir` finds them there in a regular install, and in
specs/ itself in an editable one. Everything else is in pyproject.toml.
"""

from pathlib import Path
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithSpecs(build_py):
    def run(self) -> None:
        super().run()
        source = Path(__file__).resolve().parent / "specs"
        target = Path(self.build_lib) / "cnncost" / "specs"
        target.mkdir(parents=True, exist_ok=True)
        for spec in sorted(source.glob("*.yaml")):
            shutil.copy2(spec, target / spec.name)


setup(cmdclass={"build_py": BuildWithSpecs})
