# SM3Det at CPU scale for SOI-Det-mini: the ConvNeXt-T model of
# sm3det_convnext-t_fpn.py at mini_scale.py's scale (the 'mini' ConvNeXt,
# depths 1/1/3/1, channels 32-256, the same MoE placement rule, trained from
# scratch; 64-channel FPN; narrower heads). Same structure, same code paths.
_base_ = ['./sm3det_convnext-t_fpn.py', './mini_scale.py']

model = dict(_base_.convnext_mini, tasks=_base_.soi_det_tasks_mini)


def _mini(head, changes):
    """A task entry of soi_det_heads.py with mini_scale.py's changes."""
    return dict(
        head,
        detector=dict(type='StockDetector', config=head.detector, **changes))


# The head pairs' heads at this scale (configs/head_pairs/*-mini.py).
faster_rcnn_sar_mini = _mini(_base_.faster_rcnn_sar, _base_.faster_rcnn_mini)
cascade_rcnn_sar_mini = _mini(_base_.cascade_rcnn_sar,
                              _base_.cascade_rcnn_mini)
retinanet_sar_mini = _mini(_base_.retinanet_sar, _base_.retinanet_mini)
roi_trans_dota_mini = _mini(_base_.roi_trans_dota, _base_.roi_trans_mini)
roi_trans_dronevehicle_mini = _mini(_base_.roi_trans_dronevehicle,
                                    _base_.roi_trans_mini)
s2anet_dota_mini = _mini(_base_.s2anet_dota, _base_.s2anet_mini)
s2anet_dronevehicle_mini = _mini(_base_.s2anet_dronevehicle,
                                 _base_.s2anet_mini)
