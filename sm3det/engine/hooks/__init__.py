from .dso_hook import DSOHook

__all__ = ['DSOHook']
