# Simple joint training with Faster R-CNN (SAR) + S2A-Net (DOTA,
# DroneVehicle) heads: the dense counterpart of
# sm3det-frcnn-s2anet_convnext-t_fpn_33k_soi-det.py (no MoE, no DSO,
# random batches).
_base_ = '../joint/joint_convnext-t_fpn_33k_soi-det.py'

# Other detectors than the base's heads: replaced whole, so that no key of
# theirs survives the merge.
model = dict(
    tasks=dict(
        sar=dict(_delete_=True, **_base_.faster_rcnn_sar),
        dota=dict(_delete_=True, **_base_.s2anet_dota),
        dronevehicle=dict(_delete_=True, **_base_.s2anet_dronevehicle)))
