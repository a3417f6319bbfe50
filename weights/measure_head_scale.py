"""Measure the head size that the head model knows best, as `HeadFinder` measures heads: the median height of the
people a person detector finds, divided by 7 (sanitary.perception.heads.TRAINING_HEAD_PX).

The head model was trained on ShanghaiTech B photos at their own size (times a scale drawn around 1), so a frame
whose people measure like those photos' people should reach the model unscaled. This runs ByteTrack-Nano (the
project's person detector, ../shared/models/bytetrack_nano_person, preprocessing as its PROVENANCE.md says) on the
training photos only (neither the validation list nor the tuning photos) and prints, over photos, the median of each
photo's median person height / 7. Run once, from the checkout:
    PYTHONPATH=$PWD .venv/bin/python weights/measure_head_scale.py ../shared/datasets/crowd-shanghaitech-b-train
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from sanitary.perception.boxes import nms
from sanitary.perception.heads import HEADS_PER_PERSON_HEIGHT
from sanitary.perception.models import cpu_session
from sanitary.train.crowd_heads import make_splits, read_points

DETECTOR = Path("../shared/models/bytetrack_nano_person/bytetrack_nano.dynamic.onnx")
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
SCORE = 0.5  # confident people only: the height is what matters, not recall
EVERY = 4  # one training photo in 4 is plenty for a median


def people_heights(session, image_bgr: np.ndarray) -> np.ndarray:
    h, w = image_bgr.shape[:2]  # 768x1024: multiples of 32, no letterbox needed
    x = (image_bgr[:, :, ::-1].astype(np.float32) / 255.0 - MEAN) / STD
    (out,) = session.run(None, {"images": np.ascontiguousarray(x.transpose(2, 0, 1)[None])})
    out = out[0]
    grids, strides = [], []
    for s in (8, 16, 32):
        ys, xs = np.meshgrid(np.arange(h // s), np.arange(w // s), indexing="ij")
        grids.append(np.stack([xs.ravel(), ys.ravel()], 1))
        strides.append(np.full((xs.size, 1), s))
    grid, stride = np.concatenate(grids).astype(np.float32), np.concatenate(strides).astype(np.float32)
    xy, wh = (out[:, :2] + grid) * stride, np.exp(out[:, 2:4]) * stride
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], 1)
    scores = out[:, 4] * out[:, 5]
    keep = scores >= SCORE
    boxes, scores = boxes[keep], scores[keep]
    boxes = boxes[nms(boxes, scores, 0.45)]
    return boxes[:, 3] - boxes[:, 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", type=Path)
    parser.add_argument("--validation", type=Path, default=Path("weights/head_points.validation.txt"))
    args = parser.parse_args()
    _, counts = read_points(args.data)
    names = make_splits(args.data, args.validation, counts).train[::EVERY]
    session = cpu_session(DETECTOR, 2)
    medians = []
    for name in names:
        heights = people_heights(session, cv2.imread(str(args.data / "images" / name)))
        if len(heights):
            medians.append(float(np.median(heights)))
    heads = np.asarray(medians) / HEADS_PER_PERSON_HEIGHT
    print(
        f"{len(names)} training photos, {len(medians)} with people: head px (median person height / "
        f"{HEADS_PER_PERSON_HEIGHT:g}) median {np.median(heads):.1f}, quartiles {np.percentile(heads, 25):.1f}-"
        f"{np.percentile(heads, 75):.1f}"
    )


if __name__ == "__main__":
    main()
