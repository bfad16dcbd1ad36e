"""Data transforms for SOI-Det."""
import logging
from typing import Optional

from mmengine.logging import print_log
from mmrotate.registry import TRANSFORMS

from ..imagery import UnscaledImageError
from .sensor_image import LoadSensorImage


@TRANSFORMS.register_module()
class LoadImageOrSkip(LoadSensorImage):
    """:class:`LoadSensorImage` that turns an unreadable image into a skip.

    The datasets check every image's header when they load, but a file can
    still be empty, truncated, not an image or vanish during a long run.
    Instead of raising, this transform logs a warning naming the file and
    the reason and returns ``None``; mmengine's ``BaseDataset.__getitem__``
    then draws another sample (training; in test mode mmengine raises, as a
    test set must be complete: test pipelines use ``LoadSensorImage``). An
    image that is not 8-bit while ``scaling`` is None is a configuration
    error and still raises. Arguments as ``LoadSensorImage``.
    """

    #: Images skipped so far in this process (each dataloader worker counts
    #: its own).
    num_skipped = 0

    def transform(self, results: dict) -> Optional[dict]:
        try:
            return super().transform(results)
        except UnscaledImageError:
            raise
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
