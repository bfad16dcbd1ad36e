"""Parameters and FLOPs of several configs in one table, beside the paper's.

    python tools/analysis_tools/model_complexity.py CONFIG [CONFIG ...]
        [--shape 800 [800]] [--num-proposals 1000] [--params-only]
        [--markdown]

Each config is counted by ``get_flops.count_config`` with get_flops.py's
conventions: all experts in the parameters, only the top-k active experts in
the FLOPs, one multiply-add = 1 FLOP, and for SM3Det one forward per dataset
head summed. Where a config is one of the paper's (METHOD.md section 7), the
table shows the published numbers and the relative difference; a config
matches when its parameters lie within 1% and its FLOPs within 5%. When all
three "separate models" of one backbone size are listed, a row adds them up,
as the paper reports them. ``--params-only`` skips the FLOPs and builds
the models on PyTorch's meta device: seconds, no memory, even for ConvNeXt-L.
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List, NamedTuple, Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
# get_flops imports sm3det, whose compatibility fixes must precede mmrotate.
from get_flops import count_config, fix_proposal_count  # noqa: E402
from mmrotate.registry import MODELS  # noqa: E402

PARAMS_TOLERANCE = 0.01  # relative
FLOPS_TOLERANCE = 0.05


class PaperModel(NamedTuple):
    """A published row: params in M, FLOPs in G (800x800, summed over the
    dataset heads), overall mAP in percent; None where unpublished."""
    label: str
    params: Optional[float] = None
    flops: Optional[float] = None
    overall_map: Optional[float] = None


def _sm3det_t(label: str, overall_map: Optional[float]) -> PaperModel:
    return PaperModel(label, 178, 487, overall_map)


# Config name (file name without .py) -> its row in the paper.
PAPER_MODELS: Dict[str, PaperModel] = {
    'sm3det_convnext-t_fpn_33k_soi-det': _sm3det_t('SM3Det', 50.20),
    'sm3det-no-dso_convnext-t_fpn_33k_soi-det':
    _sm3det_t('SM3Det without DSO', 49.47),
    'sm3det-dso-no-head-policy_convnext-t_fpn_33k_soi-det':
    _sm3det_t('SM3Det, DSO without head policy', 49.86),
    'sm3det-dso-no-backbone-policy_convnext-t_fpn_33k_soi-det':
    _sm3det_t('SM3Det, DSO without backbone policy', 50.11),
    'sm3det-dso-tau3-b0.3_convnext-t_fpn_33k_soi-det':
    _sm3det_t('SM3Det, DSO tau 3 b 0.3', 50.14),
    'sm3det-dso-tau3-b0.5_convnext-t_fpn_33k_soi-det':
    _sm3det_t('SM3Det, DSO tau 3 b 0.5', 50.07),
    'sm3det-dso-tau3-b0.6_convnext-t_fpn_33k_soi-det':
    _sm3det_t('SM3Det, DSO tau 3 b 0.6', 50.03),
    'sm3det-dso-tau2-b0.4_convnext-t_fpn_33k_soi-det':
    _sm3det_t('SM3Det, DSO tau 2 b 0.4', 49.92),
    'sm3det-dso-tau4-b0.4_convnext-t_fpn_33k_soi-det':
    _sm3det_t('SM3Det, DSO tau 4 b 0.4', 50.03),
    'sm3det-dso-only_convnext-t_fpn_33k_soi-det':
    PaperModel('SM3Det, DSO only', 66, 403, 49.40),
    'joint_convnext-t_fpn_33k_soi-det':
    PaperModel('simple joint training', 66, 403, 47.05),
    'da_convnext-t_fpn_33k_soi-det':
    PaperModel('DA (domain attention)', 66, 403, 48.37),
    'unidet-partitioned_convnext-t_fpn_33k_soi-det':
    PaperModel('UniDet (partitioned heads)', 66, 403, 48.47),
    'uncertainty-weighting_convnext-t_fpn_33k_soi-det':
    PaperModel('uncertainty loss weighting', 66, 403, 48.79),
    'gfl_convnext-t_fpn_33k_sardet': PaperModel('GFL (SAR only)', 36, 131),
    'oriented-rcnn_convnext-t_fpn_33k_dota':
    PaperModel('Oriented R-CNN (DOTA only)', 45, 136),
    'oriented-rcnn_convnext-t_fpn_33k_dronevehicle':
    PaperModel('Oriented R-CNN (DroneVehicle only)', 45, 136),
    # MoE size: the even blocks of stages 3-4, E experts, top-k.
    'sm3det-moe-stages3-4-2experts_convnext-t_fpn_33k_soi-det':
    PaperModel('MoE stages 3-4, 2 experts top-2', 82, 469),
    'sm3det-moe-stages3-4-4experts_convnext-t_fpn_33k_soi-det':
    PaperModel('MoE stages 3-4, 4 experts top-2', 113, 469),
    'sm3det-moe-stages3-4-6experts_convnext-t_fpn_33k_soi-det':
    PaperModel('MoE stages 3-4, 6 experts top-2', 142, 469),
    'sm3det-moe-stages3-4_convnext-t_fpn_33k_soi-det':
    PaperModel('MoE stages 3-4, 8 experts top-2', 174, 469),
    'sm3det-moe-stages3-4-10experts_convnext-t_fpn_33k_soi-det':
    PaperModel('MoE stages 3-4, 10 experts top-2', 205, 469),
    'sm3det-moe-stages3-4-top1_convnext-t_fpn_33k_soi-det':
    PaperModel('MoE stages 3-4, 8 experts top-1', 174, 403),
    'sm3det-moe-stages3-4-top3_convnext-t_fpn_33k_soi-det':
    PaperModel('MoE stages 3-4, 8 experts top-3', 174, 531),
    # MoE placement, 8 experts top-2 (stages 2-4 is SM3Det itself).
    'sm3det-moe-stage4_convnext-t_fpn_33k_soi-det':
    PaperModel('MoE stage 4', 132, 422),
    'sm3det-moe-stages1-4_convnext-t_fpn_33k_soi-det':
    PaperModel('MoE stages 1-4', 179, 506),
    'sm3det-moe-all-blocks_convnext-t_fpn_33k_soi-det':
    PaperModel('MoE in every block', 249, 572),
    # Same experts as SM3Det; the paper gives no FLOPs for it.
    'sm3det-moe-image-routing_convnext-t_fpn_33k_soi-det':
    PaperModel('SM3Det, image-level routing', 178, None, 48.25),
    'sm3det_convnext-s_fpn_33k_soi-det':
    PaperModel('SM3Det ConvNeXt-S', 275, None, 50.28),
    'sm3det_convnext-b_fpn_33k_soi-det':
    PaperModel('SM3Det ConvNeXt-B', 459, None, 51.33),
    'sm3det_convnext-l_fpn_33k_soi-det':
    PaperModel('SM3Det ConvNeXt-L', 770, None, 52.16),
}


def _separate_models(size: str) -> tuple:
    return (f'gfl_convnext-{size}_fpn_33k_sardet',
            f'oriented-rcnn_convnext-{size}_fpn_33k_dota',
            f'oriented-rcnn_convnext-{size}_fpn_33k_dronevehicle')


# The paper reports the "3 separate models" as one row: their sums.
PAPER_GROUPS: Dict[tuple, PaperModel] = {
    _separate_models('t'):
    PaperModel('3 separate models (ConvNeXt-T)', 126, 403, 48.23),
    _separate_models('s'):
    PaperModel('3 separate models (ConvNeXt-S)', 192, None, 49.17),
    _separate_models('b'):
    PaperModel('3 separate models (ConvNeXt-B)', 309, None, 50.18),
    _separate_models('l'):
    PaperModel('3 separate models (ConvNeXt-L)', 636, None, 50.50),
}


def group_name(members: Sequence[str]) -> str:
    """Short table name of a group: ``sum: gfl_convnext-t + ...``."""
    return 'sum: ' + ' + '.join(name.split('_fpn')[0] for name in members)


def config_name(path: str) -> str:
    """``configs/x/name.py`` -> ``name``: the key of the paper tables."""
    return osp.splitext(osp.basename(path))[0]


def measure_config(path: str, shape: Sequence[int],
                   num_proposals: int = 1000,
                   params_only: bool = False) -> Dict[str, Optional[float]]:
    """Parameters and FLOPs (plain counts) of one config's model.

    Args:
        path: an MMEngine config file.
        shape: input ``(H, W)``.
        num_proposals: RoIs per image for two-stage heads.
        params_only: count the parameters of a model built on the meta
            device (no weights allocated); ``flops`` is then None.

    Returns:
        dict with ``params`` and ``flops``.
    """
    cfg = Config.fromfile(path)
    init_default_scope(cfg.get('default_scope', 'mmrotate'))
    if params_only:
        with torch.device('meta'):
            model = MODELS.build(cfg.model)
        return dict(params=sum(p.numel() for p in model.parameters()),
                    flops=None)
    fix_proposal_count(cfg.model, num_proposals)
    result = count_config(cfg, shape)
    return dict(params=result['params'], flops=result['flops'])


def _sum_or_none(values) -> Optional[float]:
    values = list(values)
    return None if None in values else sum(values)


def _relative(measured: Optional[float],
              published: Optional[float]) -> Optional[float]:
    if measured is None or published is None:
        return None
    return measured / published - 1


def complexity_rows(measured: Dict[str, Dict[str, float]]) -> List[Dict]:
    """Table rows from measured counts, with the paper's where it has them.

    Args:
        measured: config name -> ``dict(params=..., flops=...)`` (counts).

    Returns:
        One dict per config (in the given order), then one per complete
        group of separate models: ``name``, ``label`` (paper row or ''),
        ``params_m``, ``flops_g``, ``paper`` (PaperModel or None),
        ``params_diff``, ``flops_diff`` (relative, None without a paper
        number) and ``matches`` (None without a paper number).
    """
    entries = [(name, PAPER_MODELS.get(name), counts)
               for name, counts in measured.items()]
    for members, paper in PAPER_GROUPS.items():
        if all(name in measured for name in members):
            entries.append((group_name(members), paper, {
                key: _sum_or_none(measured[name][key] for name in members)
                for key in ('params', 'flops')
            }))
    rows = []
    for name, paper, counts in entries:
        params_m = counts['params'] / 1e6
        flops_g = None if counts['flops'] is None else counts['flops'] / 1e9
        params_diff = _relative(params_m, paper and paper.params)
        flops_diff = _relative(flops_g, paper and paper.flops)
        checks = [abs(d) <= tol for d, tol in ((params_diff, PARAMS_TOLERANCE),
                                               (flops_diff, FLOPS_TOLERANCE))
                  if d is not None]
        rows.append(dict(
            name=name, label=paper.label if paper else '',
            params_m=params_m, flops_g=flops_g, paper=paper,
            params_diff=params_diff, flops_diff=flops_diff,
            matches=all(checks) if checks else None))
    return rows


def _number(value: Optional[float], fmt: str = '.2f') -> str:
    return '-' if value is None else format(value, fmt)


def _percent(value: Optional[float]) -> str:
    return '-' if value is None else f'{100 * value:+.1f}%'


HEADER = ['config', 'paper row', 'params (M)', 'FLOPs (G)', 'paper params (M)',
          'paper FLOPs (G)', 'params diff', 'FLOPs diff', 'matches']


def format_rows(rows: List[Dict], markdown: bool = False) -> str:
    """The rows of :func:`complexity_rows` as a Markdown or ASCII table."""
    table = [HEADER]
    for row in rows:
        paper = row['paper'] or PaperModel('')
        table.append([
            row['name'], row['label'], _number(row['params_m']),
            _number(row['flops_g']), _number(paper.params, 'g'),
            _number(paper.flops, 'g'), _percent(row['params_diff']),
            _percent(row['flops_diff']),
            {None: '-', True: 'yes', False: 'NO'}[row['matches']]
        ])
    if markdown:
        lines = ['| ' + ' | '.join(cells) + ' |' for cells in table]
        lines.insert(1, '|' + '---|' * len(HEADER))
        return '\n'.join(lines)
    from terminaltables import AsciiTable
    return AsciiTable(table).table


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='+', metavar='CONFIG')
    parser.add_argument('--shape', type=int, nargs='+', default=[800],
                        help='input height [width]')
    parser.add_argument('--num-proposals', type=int, default=1000,
                        help='RoIs per image for two-stage heads')
    parser.add_argument('--params-only', action='store_true',
                        help='count parameters only (meta device, fast)')
    parser.add_argument('--markdown', action='store_true',
                        help='print a Markdown table')
    args = parser.parse_args()
    if len(args.shape) > 2:
        parser.error('--shape takes one or two numbers')
    shape = args.shape * 2 if len(args.shape) == 1 else args.shape

    measured = {}
    for path in args.configs:
        measured[config_name(path)] = counts = measure_config(
            path, shape, args.num_proposals, args.params_only)
        # Progress: counting FLOPs of a ConvNeXt-T config takes a minute.
        flops = counts['flops']
        print(f'{path}: {counts["params"] / 1e6:.2f} M params' +
              ('' if flops is None else f', {flops / 1e9:.2f} G FLOPs'),
              file=sys.stderr, flush=True)
    if not args.params_only:
        print(f'input 1x3x{shape[0]}x{shape[1]}; FLOPs: one multiply-add = '
              '1, active experts only, summed over the dataset heads; '
              'params: all experts')
    print(format_rows(complexity_rows(measured), args.markdown))


if __name__ == '__main__':
    main()
