"""SOI-Det evaluation: per-dataset COCO / rotated VOC AP, the overall row;
the MoE backbone's expert usage per dataset."""
from .coco_ap import coco_class_ap
from .dota_submission import write_dota_task1
from .expert_usage import (ExpertUsage, image_expert_maps, js_distance,
                           layer_in_stage, route_images, stage_of,
                           valid_token_extent)
from .rotated_ap import match_rotated_detections, rotated_class_ap
from .soi_det_metric import SOIDetMetric, pool_class_aps
from .summary_tables import (display_names, format_class_table,
                             format_summary_markdown, format_summary_table)

__all__ = [
    'SOIDetMetric', 'pool_class_aps', 'coco_class_ap',
    'match_rotated_detections', 'rotated_class_ap', 'write_dota_task1',
    'format_class_table', 'format_summary_markdown', 'format_summary_table',
    'display_names', 'ExpertUsage', 'route_images', 'image_expert_maps',
    'stage_of', 'layer_in_stage', 'valid_token_extent', 'js_distance'
]
