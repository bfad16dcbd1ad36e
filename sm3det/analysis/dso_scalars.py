"""The DSO learning-rate multipliers of a training run, read from its log.

``DSOHook`` publishes one scalar per sub-module (``dso_<name>``) and the shared
``dso_shared``; mmengine's logger writes them, every logging interval, as one
JSON object per line into ``<run>/vis_data/scalars.json`` (and the run's
``<timestamp>.json``).
"""
import glob
import json
import os.path as osp
from typing import Dict, List, Tuple

DSO_PREFIX = 'dso_'


def find_scalars_file(path: str) -> str:
    """``path`` itself if it is a file, else the newest
    ``vis_data/scalars.json`` below the directory ``path``."""
    if osp.isfile(path):
        return path
    candidates = glob.glob(
        osp.join(path, '**', 'vis_data', 'scalars.json'), recursive=True)
    if not candidates:
        raise FileNotFoundError(f'no vis_data/scalars.json under {path}')
    return max(candidates, key=osp.getmtime)


def load_dso_scalars(path: str) -> Tuple[List[int], Dict[str, List[float]]]:
    """Read the DSO multipliers from an mmengine JSON-lines scalar log.

    Returns:
        tuple: the iterations (``step``) of the lines that hold DSO scalars,
        and ``{sub_module: [multiplier per such line]}``.
    """
    steps: List[int] = []
    records: List[Dict[str, float]] = []
    with open(path) as f:
        for line in f:
            record = json.loads(line) if line.strip() else {}
            dso = {
                key[len(DSO_PREFIX):]: value
                for key, value in record.items() if key.startswith(DSO_PREFIX)
            }
            if dso:  # skip validation lines and the like
                steps.append(record.get('step', record.get('iter')))
                records.append(dso)
    if not steps:
        raise ValueError(f'{path} holds no {DSO_PREFIX}* scalars: was the run '
                         'trained with DSOHook?')
    names = sorted(set().union(*records))
    return steps, {
        name: [record.get(name, float('nan')) for record in records]
        for name in names
    }
