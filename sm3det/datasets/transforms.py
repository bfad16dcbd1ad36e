"""Data transforms for SOI-Det."""
import logging
from typing import Optional

from mmcv.transforms import LoadImageFromFile
from mmengine.logging import print_log
from mmrotate.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadImageOrSkip(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` that turns an unreadable image into a skip.

    The datasets check every image's header when they load, but a file can
    still be truncated or vanish during a long run. Instead of raising, this
    transform logs a warning naming the file and returns ``None``; mmengine's
    ``BaseDataset.__getitem__`` then draws another sample (training; in test
    mode mmengine raises, as a test set must be complete). Arguments as
    ``LoadImageFromFile`` (use ``color_type='color'`` to read one-channel SAR
    images as 3 channels).
    """

    #: Images skipped so far in this process (each dataloader worker counts
    #: its own).
    num_skipped = 0

    def transform(self, results: dict) -> Optional[dict]:
        try:
            return super().transform(results)
        except Exception as e:  # noqa: BLE001 - any read/decode failure: skip
            LoadImageOrSkip.num_skipped += 1
            print_log(
                f'skipped unreadable image {results.get("img_path")} '
                f'({type(e).__name__}: {e}); {LoadImageOrSkip.num_skipped} '
                'skipped in this process so far, another sample is drawn '
                'instead',
                logger='current',
                level=logging.WARNING)
            return None
