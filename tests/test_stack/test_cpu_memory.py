"""reuse_large_cpu_blocks: a large tensor freed and allocated again comes
back from glibc's heap instead of fresh pages from the kernel."""
import os
import subprocess
import sys

import pytest

from sm3det.utils.cpu_memory import MALLOC_ENV

# Allocates and frees a 64 MiB tensor (above glibc's largest default mmap
# threshold, 32 MiB) eight times and prints the page faults of the last four
# (the heap settles within the first three).
SCRIPT = r'''
import resource, sys
import torch
from sm3det.utils import reuse_large_cpu_blocks

print(reuse_large_cpu_blocks() if sys.argv[1] == 'reuse' else False)

def step():
    torch.ones(16 << 20)  # 64 MiB of float32, written, then freed

for _ in range(4):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
'''


def run(mode, **env):
    clean = {k: v for k, v in os.environ.items() if k not in MALLOC_ENV}
    out = subprocess.run([sys.executable, '-c', SCRIPT, mode],
                         env=dict(clean, **env),
                         capture_output=True,
                         text=True,
                         check=True).stdout.split()
    return out[-2] == 'True', int(out[-1])


def test_large_blocks_are_reused_instead_of_faulted_in_again():
    applied, faults_reused = run('reuse')
    if not applied:
        pytest.skip('not glibc: reuse_large_cpu_blocks does nothing')
    _, faults_default = run('default')
    # 4 x 64 MiB in 4 KiB pages is 65,536 faults when each block is new.
    assert faults_default > 60_000, faults_default
    assert faults_reused < 1_000, faults_reused


def test_the_users_malloc_settings_win():
    applied, _ = run('reuse', MALLOC_MMAP_THRESHOLD_='65536')
    assert not applied
