from .uncertainty_weighting import UncertaintyLossWeighting, weight_key

__all__ = ['UncertaintyLossWeighting', 'weight_key']
