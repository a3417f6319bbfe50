"""sanitary: anonymous occupancy, mask-wearing and distancing aggregates from video."""

import os

# BLAS here only ever sees tiny matrices (the tracker's Kalman filter, 3x3 homographies), while onnxruntime
# keeps the cores busy. OpenBLAS's own thread pool then spins against it and halves the frame rate (measured:
# 9.1 -> 16.4 frames/s on 2 cores). It reads this once, when numpy or scipy first loads it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# ONNX Runtime otherwise writes a device id and a telemetry database under ~/.cache/Microsoft (seen with strace in
# tests/governance/test_anonymity_run.py): a persistent identifier of the unit, which a privacy-by-design tool must
# not leave behind. It reads this when a session is created.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
