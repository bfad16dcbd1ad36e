"""What a user names as input images: files, arrays, folders, globs."""
import glob
import os
import os.path as osp
from typing import List, Sequence, Union

import numpy as np

#: Files a folder or glob is listed for (.npy: arrays read lazily).
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp',
                    '.npy')

Source = Union[str, np.ndarray]


def image_sources(inputs: Union[Source, Sequence[Source]]) -> List[Source]:
    """Paths and arrays, with each folder replaced by its images (sorted, not
    recursive) and each glob pattern by its matches (sorted).

    Raises:
        FileNotFoundError: a folder without images, a pattern matching
            nothing.
    """
    if not isinstance(inputs, (list, tuple)):
        inputs = [inputs]
    sources = []
    for source in inputs:
        if isinstance(source, str) and osp.isdir(source):
            paths = sorted(
                osp.join(source, name) for name in os.listdir(source)
                if name.endswith(IMAGE_EXTENSIONS)
                and osp.isfile(osp.join(source, name)))
            if not paths:
                raise FileNotFoundError(
                    f'no image ({", ".join(IMAGE_EXTENSIONS)}) in folder '
                    f'{source}')
        elif isinstance(source, str) and any(c in source for c in '*?['):
            paths = sorted(glob.glob(source))
            if not paths:
                raise FileNotFoundError(f'no file matches {source}')
        else:
            paths = [source]
        sources.extend(paths)
    return sources
