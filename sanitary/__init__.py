"""sanitary: anonymous occupancy, mask-wearing and distancing aggregates from video."""
