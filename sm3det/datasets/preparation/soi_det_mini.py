"""Write SOI-Det-mini: a small, procedurally drawn stand-in for SOI-Det.

Three parts in three sensor styles, each written in the real data set's own
annotation format and folder layout (see ``data/README.md``), so the real
loaders read it unchanged:

* ``sar/``: single-channel SAR-like images (dark sea / land, multiplicative
  speckle, objects as clusters of bright scatterers), COCO json with
  horizontal boxes, SARDet's 6 classes.
* ``dota/``: RGB optical images (terrain textures, coloured objects), DOTA txt
  with oriented polygons, the 15 DOTA-v1.0 classes.
* ``dronevehicle/``: infrared images (warm vehicles on a cooler background,
  640x512 aspect, i.e. 320x256 at the default size), DroneVehicle's VOC-style
  xml with ``<polygon><x1>..`` and its spelling "feright car".

Every class is told apart by shape, size, aspect and texture so that a detector
can learn them. The output is a function of the seed and the arguments only.
:func:`generate_soi_det_mini` writes it;
``tools/misc/generate_soi_det_mini.py`` is its command line.
"""
import json
import math
import os
import os.path as osp
from dataclasses import dataclass
from typing import Callable, Tuple
from xml.sax.saxutils import escape

import cv2
import numpy as np

SAR_CLASSES = ('ship', 'aircraft', 'car', 'tank', 'bridge', 'harbor')
DOTA_CLASSES = ('plane', 'baseball-diamond', 'bridge', 'ground-track-field',
                'small-vehicle', 'large-vehicle', 'ship', 'tennis-court',
                'basketball-court', 'storage-tank', 'soccer-ball-field',
                'roundabout', 'harbor', 'swimming-pool', 'helicopter')
DRONEVEHICLE_CLASSES = ('car', 'truck', 'bus', 'van', 'freight car')
# How the real DroneVehicle xml spells its classes (it writes "feright car").
DRONEVEHICLE_XML_NAMES = {'freight car': 'feright car'}

# The parts' real split names: SAR has train/test, DOTA is tested on val
# patches, DroneVehicle on its test split.
SPLITS = {
    'sar': ('train', 'test'),
    'dota': ('train', 'val'),
    'dronevehicle': ('train', 'test')
}


# ---------------------------------------------------------------- geometry
@dataclass
class Pose:
    """Where an object lies: centre (px) and the direction of its length axis.

    Shapes are described in local coordinates ``(u, v)``: ``u`` along the
    object's length, ``v`` across it, both in pixels, origin at the centre.
    """
    cx: float
    cy: float
    angle: float  # radians, counter-clockwise from the image x axis (y down)

    def to_image(self, local):
        """(N, 2) local (u, v) points -> (N, 2) image (x, y) points."""
        local = np.asarray(local, dtype=np.float64).reshape(-1, 2)
        c, s = math.cos(self.angle), math.sin(self.angle)
        x = self.cx + local[:, 0] * c - local[:, 1] * s
        y = self.cy + local[:, 0] * s + local[:, 1] * c
        return np.stack([x, y], axis=1)


def rect(u0, v0, u1, v1):
    """Local rectangle corners, clockwise on screen (y down)."""
    return [(u0, v0), (u1, v0), (u1, v1), (u0, v1)]


def fill(img, pose, local, color):
    pts = np.round(pose.to_image(local)).astype(np.int32)
    cv2.fillPoly(img, [pts], color, lineType=cv2.LINE_AA)


def outline(img, pose, local, color, thickness=1):
    pts = np.round(pose.to_image(local)).astype(np.int32)
    cv2.polylines(img, [pts], True, color, thickness, lineType=cv2.LINE_AA)


def line(img, pose, a, b, color, thickness=1):
    (x0, y0), (x1, y1) = np.round(pose.to_image([a, b])).astype(int)
    cv2.line(img, (x0, y0), (x1, y1), color, thickness, lineType=cv2.LINE_AA)


def disc(img, pose, centre, radius, color, thickness=-1):
    (x, y), = np.round(pose.to_image([centre])).astype(int)
    cv2.circle(
        img, (x, y),
        max(1, int(round(radius))),
        color,
        thickness,
        lineType=cv2.LINE_AA)


def low_freq_noise(rng, shape, cells):
    """Smooth random field in [0, 1]: bicubic upsampling of a coarse grid."""
    coarse = rng.random((cells, cells)).astype(np.float32)
    return cv2.resize(
        coarse, (shape[1], shape[0]),
        interpolation=cv2.INTER_CUBIC).clip(0, 1)


# ------------------------------------------------------------- object kinds
@dataclass
class ObjectKind:
    """A class's look: size ranges at 256 px and a drawing function.

    ``length``/``width`` are (min, max) pixel ranges of the oriented box's long
    and short sides; ``draw(img, pose, length, width, rng)`` draws inside it.
    """
    length: Tuple[float, float]
    width: Tuple[float, float]
    draw: Callable


# SAR: intensities are reflectivities in [0, 255]; speckle is applied later.
def sar_scatterers(img, pose, length, width, rng, count, level=255):
    """Bright point scatterers spread inside the object's box."""
    u = rng.uniform(-length / 2, length / 2, count)
    v = rng.uniform(-width / 2, width / 2, count)
    for p in zip(u, v):
        disc(img, pose, p, rng.uniform(1.0, 1.8), level)


def sar_ship(img, pose, length, width, rng):
    hull = [(-length / 2, -width / 2), (length / 4, -width / 2),
            (length / 2, 0), (length / 4, width / 2), (-length / 2, width / 2)]
    fill(img, pose, hull, 150)
    for u in np.linspace(-length / 2.5, length / 3, 5):
        disc(img, pose, (u, 0), 1.5, 255)


def sar_aircraft(img, pose, length, width, rng):
    fill(img, pose, rect(-length / 2, -2.5, length / 2, 2.5), 170)
    fill(img, pose, [(0, -width / 2),
                     (length / 8, -width / 2), (length / 4, 0),
                     (length / 8, width / 2), (0, width / 2)], 150)
    fill(img, pose, rect(-length / 2, -width / 5, -length / 2.8, width / 5),
         150)
    for p in ((length / 16, -width / 2.2), (length / 16, width / 2.2),
              (length / 2.2, 0)):
        disc(img, pose, p, 1.8, 255)


def sar_car(img, pose, length, width, rng):
    fill(img, pose, rect(-length / 2, -width / 2, length / 2, width / 2), 200)
    sar_scatterers(img, pose, length * 0.8, width * 0.8, rng, 4)


def sar_tank(img, pose, length, width, rng):
    disc(img, pose, (0, 0), length / 2 - 1, 210, thickness=3)
    disc(img, pose, (0, 0), length / 2 - 4, 60)
    disc(img, pose, (length / 5, -length / 5), 2, 255)


def sar_bridge(img, pose, length, width, rng):
    fill(img, pose, rect(-length / 2, -width / 2, length / 2, width / 2), 110)
    for u in np.arange(-length / 2 + 2, length / 2 - 1, 5.0):
        disc(img, pose, (u, -width / 2 + 1), 1.2, 255)
        disc(img, pose, (u, width / 2 - 1), 1.2, 255)


def sar_harbor(img, pose, length, width, rng):
    fill(img, pose, rect(-length / 2, -width / 2, length / 2, -width / 2 + 7),
         170)
    for u in np.linspace(-length / 2 + 3, length / 2 - 8, 4):
        fill(img, pose, rect(u, -width / 2, u + 5, width / 2), 140)
    sar_scatterers(img, pose, length, width, rng, 6, level=230)


SAR_KINDS = {
    'ship': ObjectKind((30, 52), (9, 12), sar_ship),
    'aircraft': ObjectKind((28, 42), (26, 40), sar_aircraft),
    'car': ObjectKind((12, 16), (8, 10), sar_car),
    'tank': ObjectKind((18, 36), (0, 0), sar_tank),  # width 0: a circle
    'bridge': ObjectKind((50, 62), (7, 9), sar_bridge),
    'harbor': ObjectKind((44, 58), (22, 28), sar_harbor),
}


# Optical (DOTA), colours RGB.
def dota_plane(img, pose, length, width, rng):
    white = tuple(int(c) for c in rng.integers(215, 250, 3))
    fill(img, pose, rect(-length / 2, -length / 18, length / 2, length / 18),
         white)
    fill(img, pose, [(length / 12, -width / 2), (length / 5, -width / 2),
                     (length / 4, 0), (length / 5, width / 2),
                     (length / 12, width / 2), (-length / 12, 0)], white)
    fill(img, pose, [(-length / 2, -width / 6), (-length / 2.6, -width / 6),
                     (-length / 3.3, 0), (-length / 2.6, width / 6),
                     (-length / 2, width / 6)], white)


def dota_baseball_diamond(img, pose, length, width, rng):
    corner = (-length / 2, -length / 2)
    (x, y), = np.round(pose.to_image([corner])).astype(int)
    cv2.ellipse(
        img, (x, y), (int(length), int(length)),
        math.degrees(pose.angle),
        0,
        90, (70, 150, 60),
        -1,
        lineType=cv2.LINE_AA)
    fill(img, pose, rect(-length / 2, -length / 2, 0, 0), (190, 140, 90))
    line(img, pose, corner, (length / 2, -length / 2), (245, 245, 245))
    line(img, pose, corner, (-length / 2, length / 2), (245, 245, 245))


def dota_bridge(img, pose, length, width, rng):
    fill(img, pose, rect(-length / 3, -width * 1.6, length / 3, width * 1.6),
         (40, 70, 110))
    fill(img, pose, rect(-length / 2, -width / 2, length / 2, width / 2),
         (165, 160, 150))
    line(img, pose, (-length / 2, -width / 2), (length / 2, -width / 2),
         (60, 60, 60))
    line(img, pose, (-length / 2, width / 2), (length / 2, width / 2),
         (60, 60, 60))


def stadium(img, pose, length, width, color):
    r = width / 2
    fill(img, pose, rect(-length / 2 + r, -r, length / 2 - r, r), color)
    disc(img, pose, (-length / 2 + r, 0), r, color)
    disc(img, pose, (length / 2 - r, 0), r, color)


def dota_ground_track_field(img, pose, length, width, rng):
    stadium(img, pose, length, width, (170, 75, 60))
    stadium(img, pose, length - 8, width - 8, (80, 160, 70))


def dota_small_vehicle(img, pose, length, width, rng):
    colors = [(200, 30, 30), (30, 60, 200), (230, 210, 40), (240, 240, 240)]
    fill(img, pose, rect(-length / 2, -width / 2, length / 2, width / 2),
         colors[rng.integers(len(colors))])
    fill(img, pose,
         rect(length / 8, -width / 2 + 1, length / 4 + 1, width / 2 - 1),
         (25, 25, 35))


def dota_large_vehicle(img, pose, length, width, rng):
    fill(img, pose, rect(-length / 2, -width / 2, length / 4, width / 2),
         (225, 225, 220))
    fill(img, pose,
         rect(length / 4 + 2, -width / 2 + 1, length / 2, width / 2 - 1),
         (150, 40, 40))


def dota_ship(img, pose, length, width, rng):
    (x, y), = np.round(pose.to_image([(0, 0)])).astype(int)
    cv2.ellipse(
        img, (x, y), (int(length * 0.62), int(width * 1.3)),
        math.degrees(pose.angle),
        0,
        360, (30, 55, 95),
        -1,
        lineType=cv2.LINE_AA)
    hull = [(-length / 2, -width / 2), (length / 4, -width / 2),
            (length / 2, 0), (length / 4, width / 2), (-length / 2, width / 2)]
    fill(img, pose, hull, (205, 205, 200))
    fill(img, pose, rect(-length / 3, -width / 4, 0, width / 4),
         (110, 100, 90))


def court(img, pose, length, width, surface, border=None):
    if border is not None:
        fill(img, pose, rect(-length / 2, -width / 2, length / 2, width / 2),
             border)
        length, width = length - 4, width - 4
    fill(img, pose, rect(-length / 2, -width / 2, length / 2, width / 2),
         surface)
    outline(
        img, pose,
        rect(-length / 2 + 1, -width / 2 + 1, length / 2 - 1, width / 2 - 1),
        (250, 250, 250))
    line(img, pose, (0, -width / 2), (0, width / 2), (250, 250, 250))


def dota_tennis_court(img, pose, length, width, rng):
    court(img, pose, length, width, (40, 120, 90), border=(175, 85, 65))


def dota_basketball_court(img, pose, length, width, rng):
    court(img, pose, length, width, (215, 150, 80))
    disc(img, pose, (0, 0), width / 5, (250, 250, 250), thickness=1)


def dota_storage_tank(img, pose, length, width, rng):
    disc(img, pose, (length / 10, length / 10), length / 2 - 1, (70, 70, 70))
    disc(img, pose, (0, 0), length / 2 - 1, (225, 225, 220))
    disc(img, pose, (0, 0), length / 2 - 3, (150, 150, 150), thickness=1)


def dota_soccer_ball_field(img, pose, length, width, rng):
    court(img, pose, length, width, (60, 165, 60))
    disc(img, pose, (0, 0), width / 5, (250, 250, 250), thickness=1)
    for side in (-1, 1):
        outline(
            img, pose,
            rect(side * length / 2, -width / 4, side * (length / 2 - 7),
                 width / 4), (250, 250, 250))


def dota_roundabout(img, pose, length, width, rng):
    disc(img, pose, (0, 0), length / 2 - 1, (120, 120, 125))
    disc(img, pose, (0, 0), length * 0.3, (70, 140, 60))


def dota_harbor(img, pose, length, width, rng):
    fill(img, pose, rect(-length / 2, -width / 2, length / 2, width / 2),
         (35, 60, 100))
    fill(img, pose, rect(-length / 2, -width / 2, length / 2, -width / 2 + 5),
         (190, 185, 175))
    for u in np.linspace(-length / 2 + 2, length / 2 - 6, 4):
        fill(img, pose, rect(u, -width / 2, u + 4, width / 2), (190, 185, 175))


def dota_swimming_pool(img, pose, length, width, rng):
    court(img, pose, length, width, (60, 200, 235), border=(245, 245, 245))


def dota_helicopter(img, pose, length, width, rng):
    body = (60, 75, 50)
    (x, y), = np.round(pose.to_image([(length / 6, 0)])).astype(int)
    cv2.ellipse(
        img, (x, y), (int(length / 5), int(width / 6)),
        math.degrees(pose.angle),
        0,
        360,
        body,
        -1,
        lineType=cv2.LINE_AA)
    line(img, pose, (-length / 2, 0), (0, 0), body, 2)
    line(img, pose, (-length / 2, -width / 6), (-length / 2, width / 6), body,
         2)
    rotor = (20, 20, 20)
    line(img, pose, (length / 6 - width / 2.2, -width / 2.2),
         (length / 6 + width / 2.2, width / 2.2), rotor, 1)
    line(img, pose, (length / 6 - width / 2.2, width / 2.2),
         (length / 6 + width / 2.2, -width / 2.2), rotor, 1)


DOTA_KINDS = {
    'plane': ObjectKind((38, 52), (36, 50), dota_plane),
    'baseball-diamond': ObjectKind((40, 54), (0, 0), dota_baseball_diamond),
    'bridge': ObjectKind((52, 62), (10, 13), dota_bridge),
    'ground-track-field': ObjectKind((54, 62), (28, 34),
                                     dota_ground_track_field),
    'small-vehicle': ObjectKind((13, 17), (8, 9), dota_small_vehicle),
    'large-vehicle': ObjectKind((28, 36), (11, 13), dota_large_vehicle),
    'ship': ObjectKind((32, 48), (10, 13), dota_ship),
    'tennis-court': ObjectKind((34, 40), (17, 20), dota_tennis_court),
    'basketball-court': ObjectKind((28, 34), (17, 21), dota_basketball_court),
    'storage-tank': ObjectKind((16, 38), (0, 0), dota_storage_tank),
    'soccer-ball-field': ObjectKind((52, 62), (34, 40),
                                    dota_soccer_ball_field),
    'roundabout': ObjectKind((36, 52), (0, 0), dota_roundabout),
    'harbor': ObjectKind((48, 60), (20, 26), dota_harbor),
    'swimming-pool': ObjectKind((18, 26), (10, 14), dota_swimming_pool),
    'helicopter': ObjectKind((28, 36), (22, 30), dota_helicopter),
}


# Infrared (DroneVehicle): grey levels, warmer is brighter.
def ir_car(img, pose, length, width, rng):
    fill(img, pose, rect(-length / 2, -width / 2, length / 2, width / 2),
         int(rng.integers(165, 195)))
    fill(img, pose,
         rect(length / 8, -width / 2 + 1, length / 4 + 1, width / 2 - 1), 105)
    disc(img, pose, (length / 2 - 3, 0), 2.5, 245)


def ir_truck(img, pose, length, width, rng):
    fill(img, pose, rect(length / 4 + 2, -width / 2, length / 2, width / 2),
         230)
    fill(img, pose, rect(-length / 2, -width / 2, length / 4, width / 2), 135)
    outline(img, pose, rect(-length / 2, -width / 2, length / 4, width / 2),
            200)


def ir_bus(img, pose, length, width, rng):
    fill(img, pose, rect(-length / 2, -width / 2, length / 2, width / 2), 200)
    for u in np.arange(-length / 2 + 3, length / 2 - 4, 5.0):
        fill(img, pose, rect(u, -width / 2 + 1, u + 3, -width / 2 + 3), 120)
        fill(img, pose, rect(u, width / 2 - 3, u + 3, width / 2 - 1), 120)
    fill(img, pose, rect(-length / 2, -width / 3, -length / 2 + 3, width / 3),
         250)


def ir_van(img, pose, length, width, rng):
    fill(img, pose, rect(-length / 2, -width / 2, length / 2, width / 2),
         int(rng.integers(200, 220)))
    fill(img, pose, rect(-length / 3, -width / 3, length / 3, width / 3), 240)


def ir_freight_car(img, pose, length, width, rng):
    fill(img, pose, rect(length / 2 - 8, -width / 2, length / 2, width / 2),
         235)
    edges = np.linspace(-length / 2, length / 2 - 10, 4)
    for i, (u0, u1) in enumerate(zip(edges[:-1], edges[1:])):
        fill(img, pose, rect(u0, -width / 2, u1 - 2, width / 2),
             160 if i % 2 else 125)


DRONEVEHICLE_KINDS = {
    'car': ObjectKind((17, 21), (9, 10), ir_car),
    'truck': ObjectKind((34, 42), (12, 14), ir_truck),
    'bus': ObjectKind((40, 48), (13, 15), ir_bus),
    'van': ObjectKind((23, 27), (11, 12), ir_van),
    'freight car': ObjectKind((48, 58), (14, 16), ir_freight_car),
}


# ------------------------------------------------------------------ scenes
def place_objects(rng, kinds, img_w, img_h, scale, count):
    """Choose ``count`` non-overlapping oriented objects inside the image.

    Returns a list of (class name, Pose, length, width) in pixels.
    """
    names = list(kinds)
    placed = []
    for _ in range(count):
        # Choose the class first and retry its placement: large classes would
        # otherwise lose to small ones in a crowded image.
        name = names[rng.integers(len(names))]
        kind = kinds[name]
        for _ in range(30):
            length = rng.uniform(*kind.length) * scale
            width = rng.uniform(
                *kind.width) * scale if kind.width[1] else length
            radius = 0.5 * math.hypot(
                length, width) * 1.3  # 1.3: context drawn around some objects
            if 2 * radius + 4 >= min(img_w, img_h):
                break
            cx = rng.uniform(radius + 2, img_w - radius - 2)
            cy = rng.uniform(radius + 2, img_h - radius - 2)
            if all(
                    math.hypot(cx - p.cx, cy - p.cy) >= radius + r
                    for _, p, _, _, r in placed):
                placed.append(
                    (name, Pose(cx, cy,
                                rng.uniform(-math.pi,
                                            math.pi)), length, width, radius))
                break
    return [(name, pose, length, width)
            for name, pose, length, width, _ in placed]


def box_corners(pose, length, width):
    """(4, 2) image corners of the object's oriented box."""
    return pose.to_image(rect(-length / 2, -width / 2, length / 2, width / 2))


def sar_scene(rng, size):
    """One SAR image and its horizontal boxes [(class, (x, y, w, h))]."""
    scale = size / 256
    refl = (20 + 25 * low_freq_noise(rng, (size, size), 4)).astype(np.float32)
    land = low_freq_noise(rng, (size, size), 3) > 0.7  # some textured land
    refl[land] += 35 * rng.random(int(land.sum())).astype(np.float32)
    boxes = []
    for name, pose, length, width in place_objects(rng, SAR_KINDS, size, size,
                                                   scale,
                                                   int(rng.integers(3, 7))):
        layer = np.zeros((size, size), np.uint8)
        SAR_KINDS[name].draw(layer, pose, length, width, rng)
        ys, xs = np.nonzero(layer)
        refl = np.maximum(refl, layer.astype(np.float32))
        boxes.append((name, (float(xs.min()), float(ys.min()),
                             float(xs.max() - xs.min() + 1),
                             float(ys.max() - ys.min() + 1))))
    # Multiplicative speckle of a 3-look intensity image, then amplitude.
    speckle = rng.gamma(3.0, 1 / 3.0, (size, size)).astype(np.float32)
    img = np.sqrt(refl * speckle / 255.0) * 255.0
    return img.clip(0, 255).astype(np.uint8), boxes


def dota_scene(rng, size):
    """One optical RGB image (BGR array) and its oriented polygons."""
    scale = size / 256
    palettes = [(95, 125, 70), (150, 130, 100),
                (125, 125, 120)]  # grass, soil, urban
    base = np.array(palettes[rng.integers(len(palettes))], np.float32)
    tone = low_freq_noise(rng, (size, size), 5)[..., None]
    img = base * (0.75 + 0.5 * tone) + rng.normal(0, 8, (size, size, 3))
    img = img.clip(0, 255).astype(np.uint8)
    objects = []
    for name, pose, length, width in place_objects(rng, DOTA_KINDS, size, size,
                                                   scale,
                                                   int(rng.integers(4, 9))):
        DOTA_KINDS[name].draw(img, pose, length, width, rng)
        objects.append((name, box_corners(pose, length, width)))
    return np.ascontiguousarray(img[..., ::-1]), objects


def infrared_scene(rng, width, height):
    """One infrared image (3 equal channels, as the real set stores) and its
    polygons."""
    scale = height / 256
    img = (65 + 30 * low_freq_noise(rng,
                                    (height, width), 4)).astype(np.float32)
    for _ in range(int(rng.integers(1, 3))):  # slightly warmer roads
        pose = Pose(
            rng.uniform(0, width), rng.uniform(0, height),
            rng.uniform(0, math.pi))
        road = np.zeros((height, width), np.uint8)
        fill(road, pose, rect(-2 * width, -22 * scale, 2 * width, 22 * scale),
             1)
        img[road > 0] += 18
    img = img.clip(0, 255).astype(np.uint8)
    objects = []
    for name, pose, length, w in place_objects(rng, DRONEVEHICLE_KINDS, width,
                                               height, scale,
                                               int(rng.integers(4, 10))):
        DRONEVEHICLE_KINDS[name].draw(img, pose, length, w, rng)
        objects.append((name, box_corners(pose, length, w)))
    img = cv2.GaussianBlur(img, (3, 3), 0.8)  # thermal images are soft
    img = (img + rng.normal(0, 3, img.shape)).clip(0, 255).astype(np.uint8)
    return cv2.merge([img, img, img]), objects


# ------------------------------------------------------------------ writers
def polygon_text(corners):
    return ' '.join(f'{v:.1f}' for v in np.asarray(corners).reshape(-1))


def dronevehicle_xml(file_name, width, height, objects):
    """DroneVehicle's VOC-style annotation with 4-point polygons."""
    parts = [
        '<annotation>', f'  <filename>{escape(file_name)}</filename>',
        '  <source><database>DroneVehicle</database></source>',
        f'  <size><width>{width}</width><height>{height}</height>'
        '<depth>3</depth></size>'
    ]
    for name, corners in objects:
        coords = ''.join(f'<x{i + 1}>{int(round(x))}</x{i + 1}>'
                         f'<y{i + 1}>{int(round(y))}</y{i + 1}>'
                         for i, (x, y) in enumerate(corners))
        parts += [
            '  <object>',
            f'    <name>{DRONEVEHICLE_XML_NAMES.get(name, name)}</name>',
            '    <pose>Unspecified</pose><truncated>0</truncated>'
            '<difficult>0</difficult>', f'    <polygon>{coords}</polygon>',
            '  </object>'
        ]
    parts.append('</annotation>')
    return '\n'.join(parts) + '\n'


def write_sar(root, split, count, size, seed):
    img_dir = osp.join(root, 'sar', 'JPEGImages', split)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(osp.join(root, 'sar', 'Annotations'), exist_ok=True)
    coco = dict(
        images=[],
        annotations=[],
        categories=[dict(id=i, name=n) for i, n in enumerate(SAR_CLASSES)])
    for i in range(count):
        rng = np.random.default_rng([seed, 0, SPLITS['sar'].index(split), i])
        img, boxes = sar_scene(rng, size)
        file_name = f'{i:06d}.jpg'
        cv2.imwrite(
            osp.join(img_dir, file_name), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        coco['images'].append(
            dict(id=i, file_name=file_name, width=size, height=size))
        for name, (x, y, w, h) in boxes:
            coco['annotations'].append(
                dict(
                    id=len(coco['annotations']),
                    image_id=i,
                    category_id=SAR_CLASSES.index(name),
                    bbox=[x, y, w, h],
                    area=w * h,
                    iscrowd=0))
    with open(osp.join(root, 'sar', 'Annotations', f'{split}.json'), 'w') as f:
        json.dump(coco, f)
    return len(coco['annotations'])


def write_dota(root, split, count, size, seed):
    img_dir = osp.join(root, 'dota', split, 'images')
    ann_dir = osp.join(root, 'dota', split, 'annfiles')
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    instances = 0
    for i in range(count):
        rng = np.random.default_rng([seed, 1, SPLITS['dota'].index(split), i])
        img, objects = dota_scene(rng, size)
        cv2.imwrite(osp.join(img_dir, f'P{i:04d}.png'), img)
        lines = ['imagesource:SOI-Det-mini',
                 'gsd:0.5']  # the header of original DOTA files
        lines += [
            f'{polygon_text(corners)} {name} 0' for name, corners in objects
        ]
        with open(osp.join(ann_dir, f'P{i:04d}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
        instances += len(objects)
    return instances


def write_dronevehicle(root, split, count, size, seed):
    img_dir = osp.join(root, 'dronevehicle', split, 'images')
    ann_dir = osp.join(root, 'dronevehicle', split, 'labels')
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    width, height = size * 5 // 4, size  # DroneVehicle's 640x512 aspect
    instances = 0
    for i in range(count):
        rng = np.random.default_rng(
            [seed, 2, SPLITS['dronevehicle'].index(split), i])
        img, objects = infrared_scene(rng, width, height)
        file_name = f'{i:05d}.jpg'
        cv2.imwrite(
            osp.join(img_dir, file_name), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        with open(osp.join(ann_dir, f'{i:05d}.xml'), 'w') as f:
            f.write(dronevehicle_xml(file_name, width, height, objects))
        instances += len(objects)
    return instances


WRITERS = {
    'sar': write_sar,
    'dota': write_dota,
    'dronevehicle': write_dronevehicle
}


def generate_soi_det_mini(out,
                          num_train=160,
                          num_test=48,
                          size=256,
                          seed=0,
                          parts=tuple(WRITERS)):
    """Write the mini set under ``out``; returns {part: {split: (images,
    instances)}}."""
    summary = {}
    for part in parts:
        train_split, test_split = SPLITS[part]
        summary[part] = {
            split: (count, WRITERS[part](out, split, count, size, seed))
            for split, count in ((train_split, num_train), (test_split,
                                                            num_test))
        }
    return summary
