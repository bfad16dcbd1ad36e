from .sm3det import SM3Det

__all__ = ['SM3Det']
