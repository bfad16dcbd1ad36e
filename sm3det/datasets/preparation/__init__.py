"""Data sets written to disk in the layouts the SOI-Det loaders read: the
generated SOI-Det-mini (``soi_det_mini``), DOTA images split into patches
(``dota_split``) and DroneVehicle's infrared part as DOTA txt
(``dronevehicle_to_dota``). ``tools/misc/generate_soi_det_mini.py`` and
``tools/dataset_converters/`` are their command lines."""
from .dota_split import split_dota
from .dronevehicle_to_dota import convert_dronevehicle
from .soi_det_mini import generate_soi_det_mini

__all__ = ['generate_soi_det_mini', 'split_dota', 'convert_dronevehicle']
