"""What the SOI-Det parts share: the dataset tag and checked loading.

The set of parts is the config's: any dataset class with this mixin takes
any ``dataset_name``, and the model's ``tasks`` and the metric's ``tasks``
are keyed by the same names, so a fourth dataset needs configs only.
"""
import glob
import os.path as osp
from typing import Dict, List, Optional, Sequence

from mmengine.logging import print_log

from .annotation_checks import SkipLog


class SOIDetPartMixin:
    """Mixed into a dataset class (before mmdet's/mmrotate's base) to give it:

    * ``dataset_name``: the part's tag (the key of its task in the model and
      metric configs; no ``.`` or ``/``, which separate loss and metric
      keys). It goes into the dataset's metainfo and
      into every sample (``data_info['dataset_name']``), from where
      ``mmdet.PackDetInputs(meta_keys=(..., 'dataset_name'))`` puts it into
      each ``DetDataSample``'s metainfo. Nothing downstream needs to guess.
    * checked loading: the subclass's ``read_samples(skip_log)`` reads the
      annotation files and records every image or object it leaves out in
      ``skip_log``; a summary is logged after loading and the record is kept
      in ``self.skip_log`` (the check tool prints it).
    * ``filter_cfg=dict(filter_empty_gt=True)`` drops images without objects
      (training only), logging how many.
    * class names: ``class_aliases`` maps spellings found in annotation files
      to the canonical class names (added to the class's ``CLASS_ALIASES``).
      A name that is neither a class nor an alias stops loading with an error
      that names the files where it occurs.
    """

    CLASS_ALIASES: Dict[str, str] = {}

    def __init__(self,
                 *args,
                 dataset_name: str,
                 class_aliases: Optional[Dict[str, str]] = None,
                 **kwargs):
        if not isinstance(dataset_name, str) or not dataset_name or any(
                c in dataset_name for c in './'):
            raise ValueError(
                f'{type(self).__name__}: dataset_name must be a non-empty '
                "name without '.' and '/' (the task's key in the model and "
                f'metric configs), got {dataset_name!r}')
        self.dataset_name = dataset_name
        self.class_aliases = {**self.CLASS_ALIASES, **(class_aliases or {})}
        self.skip_log = SkipLog(dataset_name)
        super().__init__(*args, **kwargs)
        # Set after loading: mmengine would try to read a string metainfo
        # value as a file.
        self._metainfo['dataset_name'] = dataset_name

    def read_samples(self, skip_log: SkipLog) -> List[dict]:
        """Read the annotation files into mmdet-style data infos."""
        raise NotImplementedError

    def load_data_list(self) -> List[dict]:
        self.skip_log = SkipLog(self.dataset_name)
        self._unknown_classes: Dict[str, List[str]] = {}
        # self.metainfo deep-copies: looked up once, not once per object
        classes = self._metainfo['classes']
        self._label_index = {}
        for name in (*classes, *self.class_aliases):
            target = self.class_aliases.get(name, name)
            if target in classes:
                self._label_index[name] = classes.index(target)
        data_list = self.read_samples(self.skip_log)
        if self._unknown_classes:
            listing = '; '.join(
                f'{name!r} ({len(files)} objects, first in {files[0]})'
                for name, files in sorted(self._unknown_classes.items()))
            raise ValueError(
                f'[{self.dataset_name}] unknown class names: {listing}. '
                f'Known classes: {list(self.metainfo["classes"])}; known '
                f'aliases: {self.class_aliases}. Map a spelling to its class '
                'with the dataset argument class_aliases.')
        if not data_list:
            raise ValueError(
                f'[{self.dataset_name}] no usable image in {self.ann_file} '
                f'({len(self.skip_log.entries)} problems, logged above)')
        for data_info in data_list:
            data_info['dataset_name'] = self.dataset_name
        self.skip_log.report(
            len(data_list), sum(map(self.num_objects, data_list)))
        return data_list

    @staticmethod
    def num_objects(data_info: dict) -> int:
        """The number of objects of a sample as :meth:`read_samples` made
        it."""
        return len(data_info['instances'])

    def label_of(self, name: str, path: str) -> Optional[int]:
        """Class index of a class name as written in ``path`` (None: unknown).

        Unknown names are collected and reported together once all files have
        been read, so that one error lists every misspelling at once.
        """
        label = self._label_index.get(name)
        if label is None:
            name = self.class_aliases.get(name, name)
            self._unknown_classes.setdefault(name, []).append(path)
        return label

    def filter_data(self) -> List[dict]:
        if self.test_mode or not (self.filter_cfg or {}).get(
                'filter_empty_gt', False):
            return self.data_list
        kept = [d for d in self.data_list if self.num_objects(d)]
        if len(kept) < len(self.data_list):
            print_log(
                f'[{self.dataset_name}] {len(self.data_list) - len(kept)} '
                'images without objects are not used for training',
                logger='current')
        return kept


def annotation_files(folder: str, extensions: Sequence[str]) -> List[str]:
    """The sorted annotation files in ``folder`` with one of ``extensions``.

    Raises a clear error when the folder is missing or holds none of them, or
    when it mixes several formats (which one was meant is then unclear).
    """
    if not osp.isdir(folder):
        raise FileNotFoundError(f'annotation folder {folder} does not exist')
    found = {
        ext: sorted(glob.glob(osp.join(folder, f'*.{ext}')))
        for ext in extensions
    }
    present = [ext for ext, files in found.items() if files]
    if not present:
        raise ValueError(
            f'no annotation files (*.{", *.".join(extensions)}) in {folder}')
    if len(present) > 1:
        raise ValueError(
            f'{folder} mixes annotation formats ({", ".join(present)}); '
            f'keep one format per folder')
    return found[present[0]]
