from .dso_hook import DSOHook
from .expert_usage_hook import ExpertUsageHook

__all__ = ['DSOHook', 'ExpertUsageHook']
