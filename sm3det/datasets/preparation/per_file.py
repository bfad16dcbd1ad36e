"""Run a data-preparation job on every file, with mmengine's progress bar."""
from typing import Callable, List, Sequence

from mmengine.utils import track_parallel_progress, track_progress


def run_per_file(job: Callable, paths: Sequence[str], workers: int,
                 chunksize: int) -> List:
    """``[job(path) for path in paths]``, in order: in a pool of ``workers``
    processes (``chunksize`` files per task) when ``workers > 1``."""
    if workers > 1:
        return track_parallel_progress(
            job, paths, workers, chunksize=chunksize)
    return track_progress(job, paths)
