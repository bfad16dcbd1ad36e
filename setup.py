import os.path as osp
from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

STARTUP_HOOK = 'sm3det_compat.pth'


class BuildPyWithStartupHook(build_py):
    """Puts ``sm3det_compat.pth`` at the root of the install (site-packages),
    also for editable installs: Python runs its ``import sm3det_compat`` at
    every start, so the stack's fixes precede any mmrotate import (see
    sm3det_compat/__init__.py). ``pip uninstall`` removes it."""

    def run(self):
        super().run()
        self.copy_file(STARTUP_HOOK, osp.join(self._hook_dir(), STARTUP_HOOK))

    def _hook_dir(self):
        # An editable install discards build_lib; the wheel's root there is
        # the install command's install_lib.
        if getattr(self, 'editable_mode', False):
            return self.get_finalized_command('install').install_lib
        return self.build_lib


setup(
    name='sm3det',
    version='0.1.0',
    description='SM3Det: a unified detector for multi-modal remote sensing '
    '(SAR / optical / infrared, HBB and OBB), an MMRotate 1.x plugin',
    packages=find_packages(
        include=['sm3det', 'sm3det.*', 'sm3det_compat', 'sm3det_compat.*']),
    cmdclass={'build_py': BuildPyWithStartupHook},
    python_requires='>=3.8',
    license='Apache-2.0',
)
