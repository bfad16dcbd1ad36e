# SM3Det with RetinaNet (SAR) + S2A-Net (DOTA, DroneVehicle)
# heads, one row of the paper's detector table: everything but the
# heads is SM3Det's (MoE ConvNeXt-T, FPN, DSO, SOI-Det 2:1:1, 33k).
_base_ = '../sm3det/sm3det_convnext-t_fpn_33k_soi-det.py'

# Other detectors than the base's heads: replaced whole, so that no key of
# theirs survives the merge.
model = dict(
    tasks=dict(
        sar=dict(_delete_=True, **_base_.retinanet_sar),
        dota=dict(_delete_=True, **_base_.s2anet_dota),
        dronevehicle=dict(_delete_=True, **_base_.s2anet_dronevehicle)))
