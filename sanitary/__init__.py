"""sanitary: anonymous occupancy, mask-wearing and distancing aggregates from video."""

import os

# BLAS here only ever sees tiny matrices (the tracker's Kalman filter, 3x3 homographies), while onnxruntime
# keeps the cores busy. OpenBLAS's own thread pool then spins against it and halves the frame rate (measured:
# 9.1 -> 16.4 frames/s on 2 cores). It reads this once, when numpy or scipy first loads it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
