# The DroneVehicle model of the "3 separate models" baseline at CPU scale.
_base_ = './oriented-rcnn_convnext-mini_fpn_600it_dota-mini.py'

model = dict(roi_head=dict(bbox_head=dict(num_classes=5)))
train_dataloader = dict(dataset=dict(_delete_=True, **_base_.dronevehicle_train))
val_dataloader = dict(dataset=dict(_delete_=True, **_base_.dronevehicle_test))
test_dataloader = val_dataloader
val_evaluator = dict(
    tasks=dict(_delete_=True, dronevehicle=_base_.evaluation_tasks.dronevehicle))
test_evaluator = val_evaluator
