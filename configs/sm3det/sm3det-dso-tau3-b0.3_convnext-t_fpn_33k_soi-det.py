# DSO ablation: backbone policy with tau = 3, b = 0.3 (default: tau 3, b 0.4).
_base_ = './sm3det_convnext-t_fpn_33k_soi-det.py'

custom_hooks = [dict(_base_.dso_hook, tau=3.0, b=0.3)]
