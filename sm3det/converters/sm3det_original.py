"""Checkpoints of the authors' SM3Det code in this repository's layout.

The authors' code (repository zcablii/SM3Det, MMRotate 0.x / mmcv 1.x)
saves ``{'meta': {'CLASSES', 'config', ...}, 'state_dict', 'optimizer'}``
with the top-level prefixes ``backbone.`` (``ConvNeXt_moe_MultiInput``),
``neck.`` (``MultitaskFPN``: a stock FPN's keys and, with ``start_level=1``
for SAR, exactly this repository's P2-P7 FPN), ``sar_bbox_head.`` (GFL),
``rgb_rpn_head.`` / ``rgb_roi_head.bbox_head.`` (DOTA) and ``ifr_rpn_head.``
/ ``ifr_roi_head.bbox_head.`` (DroneVehicle). Their heads share one label
space of 26 classes (SAR, DOTA, DroneVehicle, each in its own order).

What changes (``RULES``; everything else keeps its name):

- stem: ``dataset_stems.single`` -> ``downsample_layers.0.0`` (conv),
  ``downsample_layers.0.0`` -> ``downsample_layers.0.1`` (LayerNorm);
- blocks: ``gamma`` -> ``layer_scale``, ``ffn.pointwise_conv1/2`` ->
  ``mlp.fc1/2``, ``ffn.experts.<e>.pointwise_conv1/2`` ->
  ``mlp.experts.<e>.fc1/2`` (GridMoE stacks them as it loads);
- router: ``ffn.w_gate.{temperature,cosine_projector,sim_matrix}`` ->
  ``mlp.router.{log_scale,proj,expert_embeddings}`` (same formula: cosine
  of the projected token and the expert embeddings times
  ``exp(min(t, ln 100))``); a linear gate ``ffn.w_gate`` (C, E) and the
  noise weight ``ffn.w_noise`` (C, E) are transposed into linear layers
  ``(E, C)``; the buffers ``ffn.mean/std`` (0 and 1) are dropped;
- heads: ``<sensor>_...`` -> ``heads.<task>...``; GFL's sigmoid classifier
  rows are picked for the task's classes (exact); an RoI classifier (27
  outputs) is kept whole for ``SharedLabelSpaceBBoxHead`` (the configs in
  ``configs/converted/``: scores as in the original) or, for a stock head,
  cut to the task's classes + background (the softmax is then taken over
  fewer logits: scores differ; a warning says so). The regression layers
  are class-agnostic and copied.

The MoE placement and expert count are read from the checkpoint's keys and
top-k from its stored config text (or ``--top-k``); they must match the
config's model. The output loads strictly into that model and is saved as
the model's own ``state_dict()`` with ``meta.dataset_meta``.

:func:`convert` converts a file;
``tools/model_converters/sm3det_original_to_sm3det.py`` is its command line.
"""
import copy
import logging
import os.path as osp
import pickle
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from mmrotate.registry import MODELS

from ..apis.tasks import task_specs
from ..models.layers import moe_layers

# The original heads, by the order of their label space.
HEAD_PREFIXES = OrderedDict([
    ('sar_bbox_head.', 'heads.sar.bbox_head.'),
    ('rgb_rpn_head.', 'heads.dota.rpn_head.'),
    ('rgb_roi_head.bbox_head.', 'heads.dota.roi_head.bbox_head.'),
    ('ifr_rpn_head.', 'heads.dronevehicle.rpn_head.'),
    ('ifr_roi_head.bbox_head.', 'heads.dronevehicle.roi_head.bbox_head.'),
])
LABEL_SPACE_ORDER = ('sar', 'dota', 'dronevehicle')
# Classifier layers whose output rows are classes (background last for
# the softmax RoI classifier).
SIGMOID_CLASSIFIERS = ('gfl_cls', )
SOFTMAX_CLASSIFIERS = ('fc_cls', )
# A class name spelt differently in the original label space.
CLASS_ALIASES = {'feright car': 'freight car'}

# Backbone renames, original -> this repository, one table for both
# directions. Placeholders: {s} stage, {b} block, {e} expert, {n} 1/2,
# {p} weight/bias. Ops: 'linear' (a 1x1 conv weight becomes a linear one),
# 'scalar' ((1,) <-> ()), 'transpose' ((C, E) <-> (E, C)), 'drop'.
RULES = [
    ('dataset_stems.single.{p}', 'downsample_layers.0.0.{p}', None),
    ('downsample_layers.0.0.{p}', 'downsample_layers.0.1.{p}', None),
    ('stages.{s}.{b}.gamma', 'stages.{s}.{b}.layer_scale', None),
    ('stages.{s}.{b}.ffn.pointwise_conv{n}.{p}',
     'stages.{s}.{b}.mlp.fc{n}.{p}', 'linear'),
    ('stages.{s}.{b}.ffn.experts.{e}.pointwise_conv{n}.{p}',
     'stages.{s}.{b}.mlp.experts.{e}.fc{n}.{p}', 'linear'),
    ('stages.{s}.{b}.ffn.w_gate.temperature',
     'stages.{s}.{b}.mlp.router.log_scale', 'scalar'),
    ('stages.{s}.{b}.ffn.w_gate.cosine_projector.{p}',
     'stages.{s}.{b}.mlp.router.proj.{p}', None),
    ('stages.{s}.{b}.ffn.w_gate.sim_matrix',
     'stages.{s}.{b}.mlp.router.expert_embeddings', None),
    ('stages.{s}.{b}.ffn.w_gate', 'stages.{s}.{b}.mlp.router.proj.weight',
     'transpose'),
    ('stages.{s}.{b}.ffn.w_noise', 'stages.{s}.{b}.mlp.noise_proj.weight',
     'transpose'),
    # The mean and std (0, 1) of the original's torch Normal: constants.
    ('stages.{s}.{b}.ffn.{buffer}', None, 'drop'),
]
OP_NOTES = {
    'drop': 'constant buffer',
    'linear': None,
    'scalar': '(1,) -> ()',
    'transpose': '(C, E) -> (E, C)'
}
PLACEHOLDERS = {
    's': r'\d+',
    'b': r'\d+',
    'e': r'\d+',
    'n': '[12]',
    'p': 'weight|bias',
    'buffer': 'mean|std'
}


def _compile(pattern: str) -> 're.Pattern':
    regex = re.escape(pattern)
    for name, allowed in PLACEHOLDERS.items():
        regex = regex.replace(
            re.escape('{' + name + '}'), f'(?P<{name}>{allowed})')
    return re.compile(f'^{regex}$')


FORWARD = [(_compile(src), dst, op) for src, dst, op in RULES]
BACKWARD = [(_compile(dst), src, op) for src, dst, op in RULES if dst]


def _apply(op: Optional[str], value: torch.Tensor,
           to_original: bool) -> torch.Tensor:
    if op == 'transpose':
        return value.t().contiguous()
    if op == 'scalar':
        return value.reshape(1) if to_original else value.reshape(())
    if op == 'linear' and not to_original and value.dim() == 4:
        return value.flatten(1)  # a 1x1 conv (linear_pw_conv=False)
    return value


def rename_backbone(
        state_dict: Dict[str, torch.Tensor],
        to_original: bool = False
) -> Tuple[Dict[str, torch.Tensor], List[tuple]]:
    """Rename backbone keys (without the ``backbone.`` prefix).

    Returns:
        The renamed dict and one ``(old key, new key or None, op)`` row per
        input key (``None``: dropped).
    """
    rules = BACKWARD if to_original else FORWARD
    renamed, rows = OrderedDict(), []
    for key, value in state_dict.items():
        for regex, template, op in rules:
            match = regex.match(key)
            if match:
                new = template.format(**match.groupdict()) if template \
                    else None
                break
        else:
            new, op = key, None
        rows.append((key, new, op))
        if new is not None and op != 'drop':
            renamed[new] = _apply(op, value, to_original)
    return renamed, rows


def unstack_experts(
        state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Stacked expert tensors ``<layer>.experts.fc1.weight (E, ...)`` ->
    per-expert keys ``<layer>.experts.<e>.fc1.weight``."""
    out = OrderedDict()
    for key, value in state_dict.items():
        match = re.match(r'^(.*\.experts)\.(fc[12]\.(weight|bias))$', key)
        if match:
            for expert, tensor in enumerate(value.unbind(0)):
                out[f'{match[1]}.{expert}.{match[2]}'] = tensor.clone()
        else:
            out[key] = value
    return out


def backbone_to_original(
        state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A ``ConvNeXtMoE`` state dict (no prefix) in the original
    ``ConvNeXt_moe_MultiInput`` layout (with ``ffn.mean/std``)."""
    renamed, _ = rename_backbone(unstack_experts(state_dict), to_original=True)
    for key in list(renamed):
        if key.endswith('.ffn.w_noise'):
            layer = key[:-len('w_noise')]
            renamed[layer + 'mean'] = torch.tensor([0.0])
            renamed[layer + 'std'] = torch.tensor([1.0])
    return renamed


# ------------------------------------------------------------------ loading
def load_original_checkpoint(path: str, unsafe_pickle: bool = False) -> dict:
    """Load a torch 1.x / mmcv 1.x checkpoint safely.

    ``torch.load(weights_only=True)``: tensors and plain data only (plus
    the few mmengine classes ``sm3det_compat`` allow-lists). A file with
    other pickled objects is refused unless ``unsafe_pickle`` (then it is
    fully unpickled, with a warning: only for files you trust).
    """
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as error:
        if not unsafe_pickle:
            reason = str(error).strip().splitlines()[0]
            raise ValueError(
                f'{path}: the checkpoint holds pickled objects other than '
                f'tensors and plain data ({reason}); if you trust the file, '
                'pass --unsafe-pickle to unpickle it fully') from None
    print_log(
        f'{path}: unpickling everything (--unsafe-pickle): this runs '
        'code stored in the file',
        logger='current',
        level=logging.WARNING)
    return torch.load(path, map_location='cpu', weights_only=False)


def original_state_dict(checkpoint, path: str) -> Dict[str, torch.Tensor]:
    """The checkpoint's state dict, checked to be an SM3Det detector's."""
    state_dict = checkpoint.get('state_dict', checkpoint) if isinstance(
        checkpoint, dict) else None
    if not isinstance(state_dict, dict) or not state_dict or not all(
            isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ValueError(f'{path}: not a model checkpoint (expected a dict '
                         "with a 'state_dict' of tensors)")
    state_dict = {
        k[len('module.'):] if k.startswith('module.') else k: v
        for k, v in state_dict.items()
    }
    heads = [
        p for p in HEAD_PREFIXES if any(k.startswith(p) for k in state_dict)
    ]
    if ('backbone.dataset_stems.single.weight' not in state_dict or not heads):
        hint = ''
        if any(
                k.startswith(('head.', 'backbone.stages.', 'stages.'))
                for k in state_dict):
            hint = (' It looks like a ConvNeXt classification / backbone '
                    'checkpoint: load it with the backbone\'s init_cfg='
                    "dict(type='Pretrained', checkpoint=...) instead.")
        raise ValueError(
            f'{path}: not a checkpoint of the original SM3Det detector: it '
            "needs 'backbone.dataset_stems.single.weight' "
            '(ConvNeXt_moe_MultiInput) and head keys starting with '
            f'{list(HEAD_PREFIXES)}.{hint}')
    return state_dict


# ------------------------------------------------------------- the layout
def original_moe_layout(state_dict: Dict[str, torch.Tensor]) -> dict:
    """What the original backbone's keys say: ``moe_blocks`` (per stage),
    ``num_experts``, ``router`` ('CosineRouter' / 'LinearRouter')."""
    depths, experts, routers = {}, {}, set()
    for key in state_dict:
        match = re.match(r'^backbone\.stages\.(\d+)\.(\d+)\.(.*)$', key)
        if not match:
            continue
        stage, block, rest = int(match[1]), int(match[2]), match[3]
        depths[stage] = max(depths.get(stage, 0), block + 1)
        expert = re.match(r'^ffn\.experts\.(\d+)\.', rest)
        if expert:
            experts.setdefault((stage, block), set()).add(int(expert[1]))
        if rest.startswith('ffn.w_gate'):
            routers.add('CosineRouter' if rest !=
                        'ffn.w_gate' else 'LinearRouter')
    counts = {len(ids) for ids in experts.values()}
    if len(counts) > 1:
        raise ValueError(f'MoE blocks with different expert counts: '
                         f'{ {k: len(v) for k, v in experts.items()} }')
    return dict(
        moe_blocks=[
            sorted(b for s, b in experts if s == stage)
            for stage in range(len(depths))
        ],
        num_experts=counts.pop() if counts else 0,
        router=routers.pop() if len(routers) == 1 else None)


def stored_top_k(meta: dict) -> Optional[int]:
    """``top_k`` of the backbone in the checkpoint's stored config text."""
    text = meta.get('config') if isinstance(meta, dict) else None
    found = set(re.findall(r'\btop_k\s*=\s*(\d+)', text or ''))
    return int(found.pop()) if len(found) == 1 else None


def check_layout(model, layout: dict, top_k: Optional[int], path: str,
                 config: str) -> None:
    """The config's backbone must be the checkpoint's; else name both."""
    backbone = model.backbone
    layers = moe_layers(backbone)
    ours = dict(
        moe_blocks=[list(b) for b in getattr(backbone, 'moe_blocks', [])],
        num_experts=next(iter(layers.values())).num_experts if layers else 0,
        router=type(next(iter(layers.values())).router).__name__
        if layers else None)
    problems = [
        f'{k}: checkpoint {layout[k]}, config {ours[k]}'
        for k in ('moe_blocks', 'num_experts') if layout[k] != ours[k]
    ]
    if layers and layout['router'] != ours['router']:
        problems.append(f"router: checkpoint {layout['router']}, config "
                        f"{ours['router']}")
    if layers:
        config_top_k = {m.top_k for m in layers.values()}
        if top_k is None:
            problems.append('top_k: the checkpoint stores no config text '
                            'with it; pass --top-k')
        elif config_top_k != {top_k}:
            problems.append(f'top_k: checkpoint {top_k}, config '
                            f'{sorted(config_top_k)}')
    if problems:
        raise ValueError(
            f'{path} does not match the model of {config}: ' +
            '; '.join(problems) + '. Use the matching config of '
            'configs/converted/ or set model.backbone.moe_blocks / moe_cfg.')


# ---------------------------------------------------------------- classes
def _normalise(name: str) -> str:
    name = re.sub(r'[_\-\s]+', ' ', name.lower()).strip()
    return CLASS_ALIASES.get(name, name)


def class_indices(
        original_classes: Sequence[str],
        task_classes: Dict[str, Sequence[str]]) -> Dict[str, List[int]]:
    """For each task, each of its classes' index in the original label
    space (SAR, DOTA, DroneVehicle blocks, matched by name in its block).
    """
    sizes = [len(task_classes[t]) for t in LABEL_SPACE_ORDER]
    if sum(sizes) != len(original_classes):
        raise ValueError(
            f'the original label space has {len(original_classes)} classes, '
            f'the config\'s tasks {dict(zip(LABEL_SPACE_ORDER, sizes))} '
            f'have {sum(sizes)}')
    indices, start = {}, 0
    for task, size in zip(LABEL_SPACE_ORDER, sizes):
        block = [_normalise(c) for c in original_classes[start:start + size]]
        indices[task] = []
        for name in task_classes[task]:
            if _normalise(name) not in block:
                raise ValueError(
                    f'{task} class {name!r} is not among the original '
                    f'classes {original_classes[start:start + size]}')
            indices[task].append(start + block.index(_normalise(name)))
        start += size
    return indices


# -------------------------------------------------------------- converting
def convert_state_dict(
    state_dict: Dict[str, torch.Tensor], model,
    indices: Dict[str,
                  List[int]]) -> Tuple[Dict[str, torch.Tensor], List[tuple]]:
    """Original keys -> this model's names (per-expert expert keys).

    Returns:
        The converted dict and rows ``(original key, new key or None,
        note)``.
    """
    targets = model.state_dict()
    converted, rows = OrderedDict(), []
    backbone = {
        k[len('backbone.'):]: v
        for k, v in state_dict.items() if k.startswith('backbone.')
    }
    renamed, backbone_rows = rename_backbone(backbone)
    for key, value in renamed.items():
        converted['backbone.' + key] = value
    noise_kept = any(k.endswith('.noise_proj.weight') for k in targets)
    for old, new, op in backbone_rows:
        if new is not None and not noise_kept and new.endswith(
                '.noise_proj.weight'):
            del converted['backbone.' + new]  # noisy_gating=False
            new, op = None, 'no noisy gating in the config'
        rows.append(
            ('backbone.' + old, None if new is None else 'backbone.' + new,
             OP_NOTES.get(op, op)))
    num_shared = None
    for key, value in state_dict.items():
        if key.startswith('backbone.'):
            continue
        if key.startswith('neck.'):
            converted[key] = value
            rows.append((key, key, None))
            continue
        prefix = next((p for p in HEAD_PREFIXES if key.startswith(p)), None)
        if prefix is None:
            rows.append((key, None, 'not part of the model'))
            continue
        new = HEAD_PREFIXES[prefix] + key[len(prefix):]
        task = new.split('.')[1]
        layer = key[len(prefix):].split('.')[0]
        note = None
        if new in targets and layer in SIGMOID_CLASSIFIERS:
            value, note = value[indices[task]], 'rows of the task classes'
        elif new in targets and layer in SOFTMAX_CLASSIFIERS:
            num_shared = value.shape[0] - 1
            if targets[new].shape[0] != value.shape[0]:
                value = value[indices[task] + [num_shared]]
                note = 'sliced: softmax over fewer logits'
                print_log(
                    f'{new}: the stock RoI classifier takes the '
                    f'{len(indices[task])} task classes + background '
                    f'of the {num_shared + 1}-way one; its scores '
                    'differ from the original model (use '
                    'SharedLabelSpaceBBoxHead to keep them)',
                    logger='current',
                    level=logging.WARNING)
            else:
                note = 'whole (shared label space)'
                _check_shared_head(model, task, indices[task], num_shared)
        converted[new] = value
        rows.append((key, new, note))
    return converted, rows


def _check_shared_head(model, task: str, indices: List[int],
                       num_shared: int) -> None:
    head = model.heads[task].roi_head.bbox_head
    ours = getattr(head, 'class_indices', None)
    if ours is None or ours.tolist() != indices or \
            head.num_shared_classes != num_shared:
        raise ValueError(
            f'{task}: the config\'s SharedLabelSpaceBBoxHead has '
            f'class_indices {None if ours is None else ours.tolist()} of '
            f'{getattr(head, "num_shared_classes", None)}; the '
            f'checkpoint\'s classes give {indices} of {num_shared}')


def load_converted(model, converted: Dict[str, torch.Tensor],
                   path: str) -> None:
    """Strict load (GridMoE stacks the per-expert keys as it loads)."""
    try:
        model.load_state_dict(copy.copy(converted), strict=True)
    except RuntimeError as error:
        raise ValueError(f'{path}: the converted keys do not load into the '
                         f'config\'s model: {error}') from None


def key_table(rows: List[tuple], saved_keys: Sequence[str]) -> str:
    """Markdown table of converted / dropped / created keys, indices
    folded into ``*`` (one line per pattern)."""

    def fold(key):  # block, expert and level indices; the stem stays
        if key is None or key.startswith('backbone.downsample_layers.0.'):
            return key
        return re.sub(r'\.\d+(?=\.|$)', '.*', key)

    groups = OrderedDict()
    mapped = set()
    for old, new, note in rows:
        kind = 'dropped' if new is None else 'converted'
        group = groups.setdefault((kind, fold(old), fold(new), note), 0)
        groups[(kind, fold(old), fold(new), note)] = group + 1
        if new is not None:
            mapped.add(new)
    for key in saved_keys:
        if key not in mapped:
            note = 'stacked from the per-expert keys' if re.search(
                r'\.experts\.fc[12]\.', key) else None
            group = ('created', None, fold(key), note)
            groups[group] = groups.get(group, 0) + 1
    lines = [
        '| kind | original key | key here | count | note |',
        '|---|---|---|---|---|'
    ]
    for (kind, old, new, note), count in groups.items():
        lines.append(f'| {kind} | {old or "-"} | {new or "-"} | {count} | '
                     f'{note or ""} |')
    return '\n'.join(lines)


def convert(src: str,
            config: str,
            dst: str,
            top_k: Optional[int] = None,
            unsafe_pickle: bool = False,
            cfg_options: Optional[dict] = None) -> str:
    """Convert ``src`` for ``config``'s model, write ``dst``; returns the
    key table (Markdown)."""
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmrotate'))
    checkpoint = load_original_checkpoint(src, unsafe_pickle)
    state_dict = original_state_dict(checkpoint, src)
    meta = checkpoint.get('meta') or {}
    model = MODELS.build(cfg.model)
    check_layout(model, original_moe_layout(state_dict),
                 top_k if top_k is not None else stored_top_k(meta), src,
                 config)
    task_classes = {
        name: spec.classes
        for name, spec in task_specs(cfg).items()
    }
    original_classes = meta.get('CLASSES') or cfg.get('original_classes')
    if not original_classes:
        raise ValueError(f'{src} has no meta.CLASSES and {config} no '
                         '`original_classes`: the label space is unknown')
    indices = class_indices(tuple(original_classes), task_classes)
    converted, rows = convert_state_dict(state_dict, model, indices)
    load_converted(model, converted, src)
    saved = model.state_dict()
    torch.save(
        dict(
            meta=dict(
                dataset_meta=dict(
                    classes=tuple(original_classes),
                    task_classes=task_classes),
                converted_from=osp.basename(src),
                original_meta={
                    k: v
                    for k, v in meta.items()
                    if k in ('mmcv_version', 'time', 'iter', 'epoch', 'config')
                }),
            state_dict=saved), dst)
    return key_table(rows, list(saved))
