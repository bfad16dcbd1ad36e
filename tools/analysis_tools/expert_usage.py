"""Which experts each dataset uses: token shares per expert, layer and stage.

Runs the MoE backbone of a trained model (SM3Det, or any detector whose
backbone has :class:`~sm3det.models.layers.GridMoE` layers) over images of
each dataset of the config, records the routing of every MoE layer and
reports, per dataset:

- the share of routing slots each expert receives, per MoE layer and per
  stage (table ``expert_usage.md`` / ``.csv``, raw counts in ``.json``);
  a token sends one slot to each of its top-k experts, so a row sums to
  100 % and a uniform router gives ``100 / num_experts`` % everywhere;
- a heat map per stage, datasets x experts (``expert_usage.png``);
- the Jensen-Shannon distance between the datasets' expert distributions per
  stage (mean over the stage's MoE layers): 0 = same experts in the same
  proportions, 1 = disjoint sets of experts; printed and in the Markdown;
- with ``--maps K``: for K images per dataset, the top-1 expert of every grid
  position of chosen layers drawn over the image (``maps/``), like the
  paper's expert maps.

The counting (:class:`ExpertUsage`) lives in
``sm3det/evaluation/expert_usage.py``; ``ExpertUsageHook`` measures the same
during validation. Only positions that cover the image
(``img_shape``) are counted: the batch padding of the data preprocessor is
left out. Layers are named by their module name in the backbone
(``stages.2.4.mlp``: ConvNeXtMoE's 0-based stage 2, the paper's stage 3);
a stage groups the layers whose names differ only in the block index.

Usage:
    python tools/analysis_tools/expert_usage.py CONFIG CHECKPOINT \
        [--split test|train] [--num-images N] [--out-dir DIR] [--maps K] \
        [--map-layers stages.2.4.mlp ...] [--cfg-options KEY=VALUE ...]
"""
import argparse
import json
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

# isort: off
import sm3det  # noqa: F401  (registers the modules; before mmrotate)
from mmrotate.registry import MODELS
# isort: on
from sm3det.datasets import build_subset_loader
from sm3det.evaluation.expert_usage import (ExpertUsage, layer_in_stage,
                                            route_images, stage_of)
from sm3det.models.layers import moe_layers


# ----------------------------------------------------------------- outputs
def usage_rows(usage: ExpertUsage) -> List[dict]:
    """Table rows: per dataset, each stage (layer ``'mean'``) followed by
    its layers; expert columns in %."""
    layer_shares, stage_shares = usage.layer_shares(), usage.stage_shares()
    rows = []
    for name in usage.datasets:
        for stage, layer_indices in usage.stages.items():
            entries = [('mean', stage_shares[name][stage])] + [
                (layer_in_stage(usage.layer_labels[i]), layer_shares[name][i])
                for i in layer_indices
            ]
            for layer, share in entries:
                rows.append(
                    dict(
                        dataset=name,
                        stage=stage,
                        layer=layer,
                        images=usage.num_images[name],
                        **{
                            f'expert_{n}': round(100 * float(s), 2)
                            for n, s in enumerate(share)
                        }))
    return rows


def write_tables(usage: ExpertUsage, out_dir: str) -> Dict[str, str]:
    """Write ``expert_usage.csv``, ``.md`` and ``.json``; returns their
    paths by extension."""
    rows = usage_rows(usage)
    columns = list(rows[0])
    paths = {
        ext: osp.join(out_dir, f'expert_usage.{ext}')
        for ext in ('csv', 'md', 'json')
    }
    with open(paths['csv'], 'w') as f:
        f.write(','.join(columns) + '\n')
        for row in rows:
            f.write(','.join(str(row[c]) for c in columns) + '\n')

    uniform = 100 / usage.num_experts
    lines = [
        '# Expert usage per dataset',
        '',
        f'Share of routing slots per expert, % (uniform: {uniform:.1f} %). '
        "Layer 'mean' is the stage's mean over its MoE blocks.",
        '',
        '| ' + ' | '.join(columns) + ' |',
        '|' + '---|' * len(columns),
    ] + [
        '| ' + ' | '.join(str(row[c]) for c in columns) + ' |' for row in rows
    ]
    distances = usage.stage_distances()
    pairs = list(next(iter(distances.values())))
    if pairs:  # a single dataset has nothing to compare with
        lines += [
            '',
            '## Jensen-Shannon distance between datasets (0 same, 1 disjoint)',
            '',
            '| stage | ' + ' | '.join(f'{a} vs {b}' for a, b in pairs) + ' |',
            '|---|' + '---|' * len(pairs),
        ] + [
            f'| {stage} | ' + ' | '.join(f'{d[pair]:.3f}'
                                         for pair in pairs) + ' |'
            for stage, d in distances.items()
        ]
    with open(paths['md'], 'w') as f:
        f.write('\n'.join(lines) + '\n')

    with open(paths['json'], 'w') as f:
        json.dump(
            dict(
                layers=usage.layer_labels,
                num_experts=usage.num_experts,
                num_images=usage.num_images,
                counts={
                    k: v.tolist()
                    for k, v in usage.counts.items()
                },
                js_distance={
                    stage: {
                        f'{a}|{b}': v
                        for (a, b), v in d.items()
                    }
                    for stage, d in distances.items()
                }),
            f,
            indent=1)
    return paths


def plot_heat_maps(usage: ExpertUsage, out_file: str) -> None:
    """One heat map per stage: datasets (rows) x the experts of the stage's
    MoE blocks side by side (columns), share of slots in %."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    shares, stages = usage.layer_shares(), usage.stages
    num_experts, datasets = usage.num_experts, usage.datasets
    widest = max(len(rows) for rows in stages.values()) * num_experts
    fig, axes = plt.subplots(
        len(stages),
        1,
        squeeze=False,
        figsize=(max(6., 0.45 * widest + 2.5),
                 1.2 + len(stages) * (0.5 * len(datasets) + 1.1)))
    for ax, (stage, rows) in zip(axes[:, 0], stages.items()):
        grid = 100 * np.stack(
            [np.concatenate([shares[d][r] for r in rows]) for d in datasets])
        image = ax.imshow(
            grid,
            cmap='viridis',
            aspect='auto',
            vmin=0,
            vmax=max(grid.max(), 1e-6))
        if grid.shape[1] <= 48:
            for (y, x), value in np.ndenumerate(grid):
                ax.text(
                    x,
                    y,
                    f'{value:.0f}',
                    ha='center',
                    va='center',
                    fontsize=7,
                    color='w' if value < grid.max() / 2 else 'k')
        ax.set_yticks(range(len(datasets)), datasets)
        ax.set_xticks(
            range(grid.shape[1]),
            [str(n) for n in range(num_experts)] * len(rows),
            fontsize=7)
        for j, row in enumerate(rows):
            if j:
                ax.axvline(j * num_experts - 0.5, color='w', linewidth=2)
            ax.text(
                (j + 0.5) * num_experts - 0.5,
                -0.55,
                layer_in_stage(usage.layer_labels[row]),
                ha='center',
                va='bottom',
                fontsize=8)
        ax.set_title(f'{stage}: share of tokens per expert (%)', pad=18)
        ax.set_xlabel('expert')
        fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
    fig.tight_layout()
    fig.savefig(out_file, dpi=120)
    plt.close(fig)


def draw_expert_maps(image: np.ndarray,
                     top1_maps: Dict[str, np.ndarray],
                     num_experts: int,
                     out_file: str,
                     title: str = '') -> None:
    """The image, then per layer the image with each position coloured by
    its top-1 expert (stretched over the image, nearest neighbour).

    Args:
        image: ``(h, w, 3)`` uint8 RGB.
        top1_maps: layer label -> ``(h_l, w_l)`` expert indices.
        num_experts: ``N``; expert n always gets the same colour.
        out_file: PNG path.
        title: Figure title (e.g. dataset and file name).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    palette = plt.get_cmap('tab10' if num_experts <= 10 else 'tab20')
    colours = [palette(n % palette.N) for n in range(num_experts)]
    cmap = ListedColormap(colours)
    height, width = image.shape[:2]
    fig, axes = plt.subplots(
        1,
        len(top1_maps) + 1,
        squeeze=False,
        figsize=(3 * (len(top1_maps) + 1) + 1.5, 3.4))
    axes = axes[0]
    axes[0].imshow(image)
    axes[0].set_title('image', fontsize=9)
    for ax, (label, top1) in zip(axes[1:], top1_maps.items()):
        ax.imshow(image)
        ax.imshow(
            top1,
            cmap=cmap,
            vmin=-0.5,
            vmax=num_experts - 0.5,
            alpha=0.55,
            interpolation='nearest',
            extent=(0, width, height, 0))
        ax.set_title(f'{label} ({top1.shape[0]}x{top1.shape[1]})', fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    fig.legend(
        handles=[
            Patch(color=colours[n], label=f'expert {n}')
            for n in range(num_experts)
        ],
        loc='center right',
        fontsize=8,
        title='top-1',
        title_fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1 - 1.3 / fig.get_figwidth(), 1))
    fig.savefig(out_file, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------- CLI
def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Expert usage per dataset of an MoE-backbone detector')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument(
        '--split',
        choices=('test', 'train'),
        default='test',
        help='whose dataloader config gives the images')
    parser.add_argument(
        '--num-images',
        type=int,
        default=10,
        help='images per dataset (evenly spaced)')
    parser.add_argument('--out-dir', default='work_dirs/expert_usage')
    parser.add_argument(
        '--maps',
        type=int,
        default=0,
        metavar='K',
        help='draw expert maps of the first K images of '
        'each dataset')
    parser.add_argument(
        '--map-layers',
        nargs='+',
        default=None,
        help="layers to draw by module name in the backbone, e.g. "
        "stages.2.4.mlp, or 'all' (default: the "
        'last MoE block of each stage)')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--num-workers', type=int, default=0)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, KEY=VALUE')
    return parser.parse_args(argv)


def choose_map_layers(labels: Sequence[str],
                      requested: Optional[Sequence[str]]) -> List[str]:
    """The layers to draw: the requested ones (checked), all, or by
    default the last MoE layer of each stage."""
    if requested is None:
        last = OrderedDict((stage_of(label), label) for label in labels)
        return list(last.values())
    if list(requested) == ['all']:
        return list(labels)
    unknown = [r for r in requested if r not in labels]
    if unknown:
        raise ValueError(f'--map-layers {unknown}: no such MoE layer; the '
                         f'model has {list(labels)}')
    return list(requested)


def main(argv=None) -> ExpertUsage:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmrotate'))

    model = MODELS.build(cfg.model)
    layers = moe_layers(getattr(model, 'backbone', model))
    if not layers:
        raise ValueError(f'{args.config}: the backbone has no GridMoE layer, '
                         'so there is no routing to measure (dense model?)')
    experts = {layer.num_experts for layer in layers.values()}
    if len(experts) != 1:
        raise ValueError(f'MoE layers differ in num_experts {experts}; this '
                         'tool compares layers with the same experts count')
    load_checkpoint(
        model, args.checkpoint, map_location='cpu', logger='current')
    map_layers = choose_map_layers(list(layers), args.map_layers)
    loader = build_subset_loader(cfg[f'{args.split}_dataloader'],
                                 args.num_images, args.batch_size,
                                 args.num_workers)

    os.makedirs(args.out_dir, exist_ok=True)
    usage = ExpertUsage(list(layers), experts.pop())
    for meta, image, maps in route_images(model, loader):
        name = meta['dataset_name']
        usage.add(name, maps)
        if usage.num_images[name] <= args.maps:
            os.makedirs(osp.join(args.out_dir, 'maps'), exist_ok=True)
            stem = osp.splitext(osp.basename(meta['img_path']))[0]
            by_label = dict(zip(layers, maps))
            draw_expert_maps(
                image, {
                    label: by_label[label][..., 0].cpu().numpy()
                    for label in map_layers
                },
                usage.num_experts,
                osp.join(args.out_dir, 'maps', f'{name}_{stem}.png'),
                title=f'{name}: {osp.basename(meta["img_path"])}')

    paths = write_tables(usage, args.out_dir)
    plot_heat_maps(usage, osp.join(args.out_dir, 'expert_usage.png'))
    print(f'Images per dataset: {usage.num_images}')
    print('Jensen-Shannon distance between datasets\' expert distributions '
          '(0 same, 1 disjoint), mean over each stage\'s MoE layers:')
    for stage, distances in usage.stage_distances().items():
        print(f'  {stage}: ' + ', '.join(f'{a}-{b} {d:.3f}'
                                         for (a, b), d in distances.items()))
    print(f'Tables: {paths["md"]}, {paths["csv"]}; heat maps: '
          f'{osp.join(args.out_dir, "expert_usage.png")}' +
          (f'; expert maps: {osp.join(args.out_dir, "maps")}' if args.
           maps else ''))
    return usage


if __name__ == '__main__':
    main()
