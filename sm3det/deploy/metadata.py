"""The metadata file of an exported task: ``<stem>.json`` beside
``<stem>.onnx``.

It holds everything the runtime needs besides the graph (class names, box
type, the test pipeline's resize and the data preprocessor's normalisation,
the head's score threshold and NMS), so that a deployment needs no config
and no OpenMMLab package. The exporter fills a :class:`DeployMeta` and
writes it with :func:`write_meta`; :func:`read_meta` reads and checks it.
"""
import copy
import dataclasses
import json
import numbers
import os
import os.path as osp
from typing import Any, Callable, Dict, List, Tuple, Union

from ..imagery import SensorScaling

#: ``format`` of the metadata files this runtime reads.
FORMAT = 'sm3det-onnx'
#: ``format_version`` of the metadata files this runtime reads.
FORMAT_VERSION = 1
#: Box types: hbox x1, y1, x2, y2; rbox cx, cy, w, h, angle (radians, le90).
BOX_TYPES = ('hbox', 'rbox')
#: What each box type's numbers are (the inferencer's JSON ``box_format``).
BOX_FORMATS = {
    'hbox': 'x1,y1,x2,y2 (pixels)',
    'rbox': 'cx,cy,w,h (pixels),angle (radians, le90)'
}
#: The NMS each box type is merged with.
NMS_TYPES = {'hbox': 'nms', 'rbox': 'nms_rotated'}
#: mmcv's OpenCV interpolation names.
INTERPOLATIONS = ('nearest', 'bilinear', 'bicubic', 'area', 'lanczos')

PathLike = Union[str, os.PathLike]


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeployMeta:
    """What the runtime needs besides the graph.

    Attributes:
        task: the task exported (e.g. ``'dota'``).
        classes: class names, by label.
        box_type: ``'hbox'`` (x1, y1, x2, y2) or ``'rbox'`` (cx, cy, w, h,
            angle in radians, le90), in pixels.
        opset: the graph's ONNX opset.
        preprocess: the test pipeline and data preprocessor:
            ``scale`` ([w, h], mmdet ``Resize``'s), ``keep_ratio``,
            ``interpolation`` (one of :data:`INTERPOLATIONS`), ``mean`` and
            ``std`` (3 floats, RGB order if ``bgr_to_rgb``), ``bgr_to_rgb``,
            ``pad_size_divisor`` (int), ``pad_value`` (after
            normalisation), ``scaling`` (the task loader's
            ``LoadSensorImage(scaling=...)``, or None).
        postprocess: the head's test settings after the graph:
            ``score_thr``, ``nms_type`` (``'nms'`` for hbox,
            ``'nms_rotated'`` for rbox), ``iou_threshold``, ``max_per_img``
            and, optionally, ``min_bbox_size`` (boxes need a width and a
            height above it; None or absent: no such filter).
        source: free notes (config, checkpoint, exporter versions ...).
        format: always :data:`FORMAT`.
        format_version: always :data:`FORMAT_VERSION`.

    Raises:
        ValueError: a field is missing a key or has a bad value (all
            problems listed, with what is allowed).
    """

    task: str
    classes: Tuple[str, ...]
    box_type: str
    opset: int
    preprocess: Dict[str, Any]
    postprocess: Dict[str, Any]
    source: Dict[str, Any] = dataclasses.field(default_factory=dict)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        problems = meta_problems(self.to_dict())
        if problems:
            raise ValueError('invalid SM3Det deployment metadata: ' +
                             '; '.join(problems))
        # Frozen: copies, so that the caller's dicts cannot change it.
        object.__setattr__(self, 'classes', tuple(self.classes))
        for name in ('preprocess', 'postprocess', 'source'):
            object.__setattr__(self, name, copy.deepcopy(getattr(self, name)))

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready copy (``classes`` as a list)."""
        data = {
            field.name: copy.deepcopy(getattr(self, field.name))
            for field in dataclasses.fields(self)
        }
        data['classes'] = list(data['classes'])
        return data

    @classmethod
    def from_dict(cls,
                  data: Dict[str, Any],
                  name: str = 'metadata') -> 'DeployMeta':
        """Check ``data`` (as :meth:`to_dict` gives it) and build the meta.

        Args:
            data: the metadata.
            name: where it comes from, for messages.

        Raises:
            ValueError: naming ``name``, the missing, unknown or bad keys
                and what is allowed.
        """
        problems = meta_problems(data)
        if problems:
            raise ValueError(f'{name} is not valid SM3Det deployment '
                             'metadata: ' + '; '.join(problems))
        return cls(**data)


def meta_path(onnx_path: PathLike) -> str:
    """``<stem>.json`` beside ``<stem>.onnx``."""
    return osp.splitext(os.fspath(onnx_path))[0] + '.json'


def write_meta(onnx_path: PathLike, meta: DeployMeta) -> str:
    """Write ``meta`` beside ``onnx_path``; returns the file written."""
    path = meta_path(onnx_path)
    with open(path, 'w') as f:
        json.dump(meta.to_dict(), f, indent=2)
        f.write('\n')
    return path


def read_meta(onnx_path: PathLike) -> DeployMeta:
    """The checked metadata of ``onnx_path`` (read from ``<stem>.json``).

    Raises:
        ValueError: the file is missing, not JSON, or not valid metadata
            (naming the file, the keys and what is allowed).
    """
    path = meta_path(onnx_path)
    if not osp.isfile(path):
        raise ValueError(f'metadata file {path} of {os.fspath(onnx_path)} '
                         'does not exist; the exporter writes it beside '
                         'the .onnx file, with the same stem')
    try:
        with open(path) as f:
            data = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f'metadata file {path} is not JSON: {e}') from None
    if not isinstance(data, dict):
        raise ValueError(f'metadata file {path} holds a JSON '
                         f'{type(data).__name__}, not an object')
    return DeployMeta.from_dict(data, path)


# ------------------------------------------------------------- checking
def _number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _class_names(value) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(
        isinstance(c, str) for c in value)


#: (check, what is allowed) of the kinds of values.
BOOL = (lambda v: isinstance(v, bool), 'true or false')
NUMBER = (_number, 'a number')
OBJECT = (lambda v: isinstance(v, dict), 'an object')
NAME = (lambda v: isinstance(v, str) and v != '', 'a non-empty string')
CLASS_NAMES = (_class_names, 'a non-empty list of class names')
IOU = (lambda v: _number(v) and 0 <= v <= 1, 'a number in [0, 1]')
SIZE_OR_NULL = (lambda v: v is None or _number(v) and v >= 0,
                'null or a number >= 0')
SCALING = (lambda v: v is None or isinstance(v, dict),
           "null or a LoadSensorImage scaling, e.g. {'type': 'percentile', "
           "'low': 1.0, 'high': 99.0}")


def _one_of(values) -> Tuple[Callable[[Any], bool], str]:
    return (lambda v: v in values), f'one of {list(values)}'


def _int_from(low: int) -> Tuple[Callable[[Any], bool], str]:
    return (lambda v: _integer(v) and v >= low), f'an int >= {low}'


def _numbers(count: int,
             kind: Callable[[Any], bool] = _number,
             positive: bool = False,
             allowed: str = '') -> Tuple[Callable[[Any], bool], str]:
    """A list of ``count`` values, each ``kind`` (and > 0)."""

    def check(value) -> bool:
        if not isinstance(value, (list, tuple)) or len(value) != count:
            return False
        return all(kind(v) and (v > 0 or not positive) for v in value)

    return check, allowed or f'{count} {"positive " * positive}numbers'


#: key -> (check, what is allowed) of the ``preprocess`` dict.
PREPROCESS_KEYS = dict(
    scale=_numbers(2, _integer, True, '[width, height], positive ints'),
    keep_ratio=BOOL,
    interpolation=_one_of(INTERPOLATIONS),
    mean=_numbers(3),
    std=_numbers(3, positive=True),
    bgr_to_rgb=BOOL,
    pad_size_divisor=_int_from(1),
    pad_value=NUMBER,
    scaling=SCALING)
#: key -> (check, what is allowed) of the ``postprocess`` dict.
POSTPROCESS_KEYS = dict(
    score_thr=NUMBER,
    nms_type=_one_of(tuple(NMS_TYPES.values())),
    iou_threshold=IOU,
    max_per_img=_int_from(1),
    min_bbox_size=SIZE_OR_NULL)
#: key -> (check, what is allowed) of the top level.
TOP_KEYS = dict(
    format=_one_of((FORMAT, )),
    format_version=_one_of((FORMAT_VERSION, )),
    task=NAME,
    classes=CLASS_NAMES,
    box_type=_one_of(BOX_TYPES),
    opset=_int_from(1),
    preprocess=OBJECT,
    postprocess=OBJECT,
    source=OBJECT)
#: Top-level keys that may be left out (the dataclass has defaults).
OPTIONAL_TOP_KEYS = ('source', 'format', 'format_version')


def _key_problems(data: dict,
                  keys: dict,
                  prefix: str = '',
                  optional: Tuple[str, ...] = ()) -> List[str]:
    """Missing, unknown and bad keys of ``data`` checked by ``keys``
    (those in ``optional`` may be left out)."""
    problems = []
    missing = [k for k in keys if k not in data and k not in optional]
    if missing:
        problems.append(f'missing {[prefix + k for k in missing]}')
    unknown = sorted(set(data) - set(keys))
    if unknown:
        problems.append(f'unknown {[prefix + k for k in unknown]} (allowed: '
                        f'{[prefix + k for k in keys]})')
    for key, (check, allowed) in keys.items():
        if key in data and not check(data[key]):
            problems.append(
                f'{prefix}{key} is {data[key]!r}; allowed: {allowed}')
    return problems


def meta_problems(data: Dict[str, Any]) -> List[str]:
    """Everything wrong with metadata ``data``, as messages naming the key
    and what is allowed (empty: valid)."""
    problems = _key_problems(data, TOP_KEYS, optional=OPTIONAL_TOP_KEYS)
    preprocess, postprocess = data.get('preprocess'), data.get('postprocess')
    if isinstance(preprocess, dict):
        problems += _key_problems(preprocess, PREPROCESS_KEYS, 'preprocess.')
        if isinstance(preprocess.get('scaling'), dict):
            try:
                SensorScaling(preprocess['scaling'])
            except ValueError as e:
                problems.append(f'preprocess.scaling: {e}')
    if isinstance(postprocess, dict):
        problems += _key_problems(postprocess, POSTPROCESS_KEYS,
                                  'postprocess.', ('min_bbox_size', ))
        box_type, nms_type = data.get('box_type'), postprocess.get('nms_type')
        if box_type in NMS_TYPES and nms_type in NMS_TYPES.values() and (
                nms_type != NMS_TYPES[box_type]):
            problems.append(f'postprocess.nms_type is {nms_type!r} but '
                            f'box_type is {box_type!r}; {box_type} boxes '
                            f'take {NMS_TYPES[box_type]!r}')
    return problems
