# SM3Det-mini with Cascade R-CNN (SAR) + S2A-Net (DOTA,
# DroneVehicle) heads on SOI-Det-mini: everything but the heads is
# sm3det_convnext-mini_fpn_600it_soi-det-mini.py's.
_base_ = '../sm3det/sm3det_convnext-mini_fpn_600it_soi-det-mini.py'

# Other detectors than the base's heads: replaced whole, so that no key of
# theirs survives the merge.
model = dict(
    tasks=dict(
        sar=dict(_delete_=True, **_base_.cascade_rcnn_sar_mini),
        dota=dict(_delete_=True, **_base_.s2anet_dota_mini),
        dronevehicle=dict(_delete_=True, **_base_.s2anet_dronevehicle_mini)))
