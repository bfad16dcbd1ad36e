from .shared_label_space_bbox_head import SharedLabelSpaceBBoxHead

__all__ = ['SharedLabelSpaceBBoxHead']
