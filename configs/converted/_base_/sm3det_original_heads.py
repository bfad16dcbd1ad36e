# The heads of the authors' SM3Det checkpoints (repository zcablii/SM3Det,
# MMRotate 0.x), for checkpoints converted with
# tools/model_converters/sm3det_original_to_sm3det.py. Their heads share one
# label space of the 26 SOI-Det classes below (SARDetDotaIFRedDataset's
# CLASSES; SAR 0-5, DOTA 6-20, DroneVehicle 21-25, in their own order; RoI
# classifiers with 27 outputs, background last). GFL's sigmoid classifier
# is sliced to the task's rows by the converter (exact); the Oriented R-CNN
# classifiers keep their 27 outputs (SharedLabelSpaceBBoxHead), so a DOTA
# RoI's scores are still the softmax over all 27 logits, as in the original.
original_classes = ('ship', 'aircraft', 'car', 'tank', 'bridge', 'harbor',
                    'small-vehicle', 'large-vehicle', 'plane', 'Ship',
                    'Harbor', 'tennis-court', 'soccer-ball-field',
                    'ground-track-field', 'baseball-diamond', 'swimming-pool',
                    'roundabout', 'basketball-court', 'storage-tank', 'Bridge',
                    'helicopter', 'CAR', 'BUS', 'FERIGHT_CAR', 'TRUCK', 'VAN')
# For each class of this repository's DOTA / DroneVehicle (soi_det.py's
# order), its index in original_classes (the converter checks them).
dota_class_indices = [8, 14, 19, 13, 6, 7, 9, 11, 17, 18, 12, 16, 10, 15, 20]
dronevehicle_class_indices = [21, 24, 22, 25, 23]


def _shared_label_space(class_indices):
    """Merged into a soi_det_heads.py Oriented R-CNN task entry."""
    return dict(
        detector=dict(
            roi_head=dict(
                bbox_head=dict(
                    type='SharedLabelSpaceBBoxHead',
                    num_shared_classes=len(original_classes),
                    class_indices=class_indices))))


# Merged into model.tasks of an SM3Det config with soi_det_heads.py's heads.
original_tasks = dict(
    dota=_shared_label_space(dota_class_indices),
    dronevehicle=_shared_label_space(dronevehicle_class_indices))
