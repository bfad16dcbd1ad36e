"""The converter of the authors' SM3Det checkpoints
(sm3det/converters/sm3det_original.py, the library of
tools/model_converters/sm3det_original_to_sm3det.py).

The original checkpoints are built here at SOI-Det-mini's scale from the
original code's key names and shapes (zcablii/SM3Det,
ConvNeXt_moe_MultiInput / MoE_layer / CosineTopKGate, mmdet 2.x FPN, GFL
and Oriented R-CNN heads over one 26-class label space).
"""
import copy
import functools
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmrotate.registry import MODELS

from sm3det.converters import sm3det_original
from repository import REPO_ROOT, run_script

MINI_CONFIG = 'configs/sm3det/sm3det_convnext-mini_fpn_600it_soi-det-mini.py'
ORIGINAL_HEADS = 'configs/converted/_base_/sm3det_original_heads.py'
# The mini depths, at a quarter of the mini widths (fast to build).
DEPTHS, CHANNELS = (1, 1, 3, 1), (8, 16, 32, 64)
# The two placements of the authors' configs at the mini depths: even
# blocks of the last two stages (released, top-3) and of the last three
# (Table 1, top-2).
PLACEMENTS = {
    'last-two-stages': ([[], [], [0, 2], [0]], 3),
    'last-three-stages': ([[], [0], [0, 2], [0]], 2),
}
DENSE = ([[], [], [], []], 2)
NUM_EXPERTS = 8


@functools.lru_cache()
def _configs():
    return (Config.fromfile(osp.join(REPO_ROOT, MINI_CONFIG)),
            Config.fromfile(osp.join(REPO_ROOT, ORIGINAL_HEADS)))


def mini_config(tmp_path, moe_blocks, top_k, shared_heads=True) -> str:
    """SM3Det-mini with the original's heads and placement, as a file."""
    cfg, heads = map(copy.deepcopy, _configs())
    cfg.merge_from_dict(
        dict(
            model=dict(
                backbone=dict(
                    moe_blocks=moe_blocks,
                    moe_cfg=dict(num_experts=NUM_EXPERTS, top_k=top_k)),
                neck=dict(in_channels=list(CHANNELS)))))
    cfg.model.backbone.arch = dict(depths=DEPTHS, channels=CHANNELS)
    if shared_heads:
        cfg.merge_from_dict(dict(model=dict(tasks=heads.original_tasks)))
    cfg.original_classes = heads.original_classes
    # JSON: Config.dump formats .py files with yapf, which is slow.
    path = str(tmp_path / f'config_{len(list(tmp_path.iterdir()))}.json')
    cfg.dump(path)
    return path


def original_backbone(moe_blocks, generator):
    """``ConvNeXt_moe_MultiInput``'s state dict (linear pointwise convs,
    cosine gate), random values."""

    def rand(*shape):
        return torch.randn(*shape, generator=generator)

    sd = {
        'dataset_stems.single.weight': rand(CHANNELS[0], 3, 4, 4),
        'dataset_stems.single.bias': rand(CHANNELS[0]),
        'downsample_layers.0.0.weight': rand(CHANNELS[0]),
        'downsample_layers.0.0.bias': rand(CHANNELS[0])
    }
    for i in range(1, 4):
        sd[f'downsample_layers.{i}.0.weight'] = rand(CHANNELS[i - 1])
        sd[f'downsample_layers.{i}.0.bias'] = rand(CHANNELS[i - 1])
        sd[f'downsample_layers.{i}.1.weight'] = rand(CHANNELS[i],
                                                     CHANNELS[i - 1], 2, 2)
        sd[f'downsample_layers.{i}.1.bias'] = rand(CHANNELS[i])
    for s, (depth, c) in enumerate(zip(DEPTHS, CHANNELS)):
        for b in range(depth):
            block = f'stages.{s}.{b}.'
            sd[block + 'gamma'] = rand(c)
            sd[block + 'depthwise_conv.weight'] = rand(c, 1, 7, 7)
            sd[block + 'depthwise_conv.bias'] = rand(c)
            sd[block + 'norm.weight'] = rand(c)
            sd[block + 'norm.bias'] = rand(c)
            ffns = [f'ffn.experts.{e}.' for e in range(NUM_EXPERTS)
                    ] if b in moe_blocks[s] else ['ffn.']
            for ffn in ffns:
                sd[block + ffn + 'pointwise_conv1.weight'] = rand(4 * c, c)
                sd[block + ffn + 'pointwise_conv1.bias'] = rand(4 * c)
                sd[block + ffn + 'pointwise_conv2.weight'] = rand(c, 4 * c)
                sd[block + ffn + 'pointwise_conv2.bias'] = rand(c)
            if b in moe_blocks[s]:
                proj = min(c // 2, 256)
                sd[block + 'ffn.w_gate.temperature'] = rand(1)
                sd[block + 'ffn.w_gate.cosine_projector.weight'] = rand(
                    proj, c)
                sd[block + 'ffn.w_gate.cosine_projector.bias'] = rand(proj)
                sd[block + 'ffn.w_gate.sim_matrix'] = rand(proj, NUM_EXPERTS)
                sd[block + 'ffn.w_noise'] = rand(c, NUM_EXPERTS)
                sd[block + 'ffn.mean'] = torch.tensor([0.0])
                sd[block + 'ffn.std'] = torch.tensor([1.0])
        sd[f'norm{s}.weight'] = rand(c)
        sd[f'norm{s}.bias'] = rand(c)
    return sd


def original_checkpoint(config, moe_blocks, top_k, path, seed=0):
    """An original-layout checkpoint for ``config``'s mini model: the
    backbone from the original names, neck and heads as mmdet 2.x names
    them, classifiers over the 26-class label space, meta as mmcv 1.x."""
    generator = torch.Generator().manual_seed(seed)
    cfg = Config.fromfile(config)
    ours = MODELS.build(cfg.model).state_dict()
    sd = {
        'backbone.' + k: v
        for k, v in original_backbone(moe_blocks, generator).items()
    }
    back = {v: k for k, v in sm3det_original.HEAD_PREFIXES.items()}
    for key, value in ours.items():
        if key.startswith('neck.'):
            sd[key] = torch.randn(value.shape, generator=generator)
        prefix = next((p for p in back if key.startswith(p)), None)
        if prefix is None:
            continue
        shape = list(value.shape)
        if '.gfl_cls.' in key:
            shape[0] = 26
        if '.fc_cls.' in key:
            shape[0] = 27
        sd[back[prefix] + key[len(prefix):]] = value.clone() if \
            'integral' in key else torch.randn(shape, generator=generator)
    sd['mtl_sigma'] = torch.ones(3)  # a parameter outside the model
    meta = dict(
        CLASSES=cfg.original_classes,
        mmcv_version='1.7.0',
        config=f"model = dict(backbone=dict(top_k= {top_k}))",
        iter=33468)
    torch.save(dict(meta=meta, state_dict=sd, optimizer={}), path)
    return sd


@pytest.mark.parametrize('placement', list(PLACEMENTS))
def test_original_checkpoint_converts_and_loads_strictly(tmp_path, placement):
    moe_blocks, top_k = PLACEMENTS[placement]
    config = mini_config(tmp_path, moe_blocks, top_k)
    src, dst = str(tmp_path / 'iter_33468.pth'), str(tmp_path / 'out.pth')
    original = original_checkpoint(config, moe_blocks, top_k, src)
    table = sm3det_original.convert(src, config, dst)
    assert '| dropped | backbone.stages.*.*.ffn.mean |' in table
    assert '| dropped | mtl_sigma | - | 1 | not part of the model |' in table

    model = MODELS.build(Config.fromfile(config).model)
    checkpoint = load_checkpoint(model, dst, strict=True)
    meta = checkpoint['meta']['dataset_meta']
    assert meta['task_classes']['dota'][0] == 'plane'
    assert len(meta['classes']) == 26
    sd = model.state_dict()
    assert torch.equal(sd['backbone.downsample_layers.0.0.weight'],
                       original['backbone.dataset_stems.single.weight'])
    assert torch.equal(sd['backbone.downsample_layers.0.1.weight'],
                       original['backbone.downsample_layers.0.0.weight'])
    assert torch.equal(
        sd['backbone.stages.2.1.mlp.fc1.weight'],
        original['backbone.stages.2.1.ffn.pointwise_conv1.'
                 'weight'])
    layer = model.backbone.stages[2][2].mlp
    old = 'backbone.stages.2.2.ffn.'
    assert layer.top_k == top_k
    assert layer.router.log_scale.item() == original[
        old + 'w_gate.temperature'].item()
    assert torch.equal(layer.noise_proj.weight, original[old + 'w_noise'].t())
    assert torch.equal(layer.router.expert_embeddings,
                       original[old + 'w_gate.sim_matrix'])
    expert5 = {k: v[5] for k, v in layer.experts.state_dict().items()}
    assert torch.equal(expert5['fc2.weight'],
                       original[old + 'experts.5.pointwise_conv2.weight'])
    # GFL rows: SAR's classes are the first 6 of the label space.
    assert torch.equal(sd['heads.sar.bbox_head.gfl_cls.weight'],
                       original['sar_bbox_head.gfl_cls.weight'][:6])
    # The RoI classifiers keep their 27 rows.
    assert torch.equal(sd['heads.dota.roi_head.bbox_head.fc_cls.weight'],
                       original['rgb_roi_head.bbox_head.fc_cls.weight'])


def test_dense_checkpoint_into_stock_heads(tmp_path):
    """No MoE block; stock RoI heads get the sliced classifier."""
    config = mini_config(tmp_path, *DENSE, shared_heads=False)
    src, dst = str(tmp_path / 'src.pth'), str(tmp_path / 'out.pth')
    original = original_checkpoint(config, *DENSE, path=src)
    printed = run_script('tools/model_converters/sm3det_original_to_sm3det.py',
                         src, config, dst).stdout
    assert 'sliced: softmax over fewer logits' in printed
    assert f'Wrote {dst}' in printed
    model = MODELS.build(Config.fromfile(config).model)
    load_checkpoint(model, dst, strict=True)
    sd = model.state_dict()
    assert torch.equal(
        sd['backbone.stages.3.0.mlp.fc2.bias'],
        original['backbone.stages.3.0.ffn.pointwise_conv2.'
                 'bias'])
    fc = original['ifr_roi_head.bbox_head.fc_cls.weight']
    # car, truck, bus, van, freight car <- CAR 21, TRUCK 24, BUS 22,
    # VAN 25, FERIGHT_CAR 23; background 26.
    assert torch.equal(
        sd['heads.dronevehicle.roi_head.bbox_head.fc_cls.'
           'weight'], fc[[21, 24, 22, 25, 23, 26]])


def test_placement_mismatch_is_an_error(tmp_path):
    config = mini_config(tmp_path, *PLACEMENTS['last-three-stages'])
    src = str(tmp_path / 'src.pth')
    original_checkpoint(config, *PLACEMENTS['last-two-stages'], path=src)
    with pytest.raises(ValueError, match=r'moe_blocks: checkpoint'):
        sm3det_original.convert(src, config, str(tmp_path / 'out.pth'))


def test_backbone_round_trip_is_the_identity():
    backbone_cfg = copy.deepcopy(_configs()[0].model.backbone)
    backbone_cfg.update(
        arch=dict(depths=DEPTHS, channels=CHANNELS),
        moe_blocks=PLACEMENTS['last-three-stages'][0],
        moe_cfg=dict(num_experts=NUM_EXPERTS, top_k=2))
    ours = MODELS.build(backbone_cfg)
    ours.init_weights()
    for layer in ours.modules():  # non-trivial router and noise weights
        if hasattr(layer, 'noise_proj') and layer.noise_proj is not None:
            torch.nn.init.normal_(layer.noise_proj.weight)
    original = sm3det_original.backbone_to_original(ours.state_dict())
    assert 'stages.2.0.ffn.experts.7.pointwise_conv1.weight' in original
    assert original['stages.2.0.ffn.w_gate.temperature'].shape == (1, )
    back, _ = sm3det_original.rename_backbone(original)
    again = MODELS.build(backbone_cfg)
    again.load_state_dict(back, strict=True)
    expected, got = ours.state_dict(), again.state_dict()
    assert list(expected) == list(got)
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def test_wrong_files_get_clear_errors(tmp_path):
    config = mini_config(tmp_path, *DENSE)
    imagenet = str(tmp_path / 'convnext_in1k.pth')
    torch.save(
        dict(
            state_dict={
                'backbone.stages.0.0.depthwise_conv.weight': torch.zeros(1),
                'head.fc.weight': torch.zeros(1)
            }), imagenet)
    with pytest.raises(ValueError, match='ConvNeXt classification'):
        sm3det_original.convert(imagenet, config, str(tmp_path / 'a.pth'))
    random_dict = str(tmp_path / 'random.pth')
    torch.save({'foo': 1, 'bar': [2]}, random_dict)
    with pytest.raises(ValueError, match='not a model checkpoint'):
        sm3det_original.convert(random_dict, config, str(tmp_path / 'b.pth'))


class Payload:
    """A pickled object that safe loading must refuse."""


def test_pickled_objects_need_the_explicit_flag(tmp_path):
    path = str(tmp_path / 'pickled.pth')
    torch.save(dict(meta=dict(obj=Payload()), state_dict={}), path)
    with pytest.raises(ValueError, match='--unsafe-pickle'):
        sm3det_original.load_original_checkpoint(path)
    loaded = sm3det_original.load_original_checkpoint(path, unsafe_pickle=True)
    assert isinstance(loaded['meta']['obj'], Payload)


def test_shared_label_space_head_gives_the_original_scores():
    cfg = Config.fromfile(osp.join(REPO_ROOT, ORIGINAL_HEADS))
    indices = cfg.dota_class_indices
    head = MODELS.build(
        dict(
            type='SharedLabelSpaceBBoxHead',
            num_shared_classes=26,
            class_indices=indices,
            num_classes=15,
            in_channels=8,
            fc_out_channels=16,
            roi_feat_size=2,
            predict_box_type='rbox',
            reg_class_agnostic=True,
            reg_predictor_cfg=dict(type='mmdet.Linear'),
            cls_predictor_cfg=dict(type='mmdet.Linear'),
            loss_cls=dict(type='mmdet.CrossEntropyLoss'),
            loss_bbox=dict(type='mmdet.SmoothL1Loss'),
            bbox_coder=dict(
                type='DeltaXYWHTRBBoxCoder',
                angle_version='le90',
                norm_factor=None,
                edge_swap=True,
                proj_xy=True,
                target_means=(.0, ) * 5,
                target_stds=(.1, ) * 5)))
    assert head.fc_cls.out_features == 27
    torch.nn.init.normal_(head.fc_cls.weight, std=3.)
    rois = torch.randn(10, 8, 2, 2)
    cls_score, _ = head(rois)
    # Reference: the original's softmax over all 27 logits, then the
    # task's classes.
    flat = rois.flatten(1)
    for fc in head.shared_fcs:
        flat = F.relu(fc(flat))
    reference = F.softmax(head.fc_cls(flat), dim=-1)[:, indices]
    scores = F.softmax(cls_score, dim=-1)  # what mmdet's predict does
    assert torch.allclose(scores[:, :15], reference, atol=1e-6)
    # Slicing the classifier instead renormalises: other scores.
    sliced = F.softmax(head.fc_cls(flat)[:, indices + [26]], dim=-1)
    assert not torch.allclose(sliced[:, :15], reference, atol=1e-3)
