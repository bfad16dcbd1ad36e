# DSO ablation: backbone policy only (head LRs follow the schedule).
_base_ = './sm3det_convnext-t_fpn_33k_soi-det.py'

custom_hooks = [dict(_base_.dso_hook, head_policy=False)]
