from setuptools import find_packages, setup

setup(
    name='sm3det',
    version='0.1.0',
    description='SM3Det: a unified detector for multi-modal remote sensing '
    '(SAR / optical / infrared, HBB and OBB), an MMRotate 1.x plugin',
    packages=find_packages(include=['sm3det', 'sm3det.*']),
    python_requires='>=3.8',
    license='Apache-2.0',
)
