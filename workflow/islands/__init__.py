"""The island model: K GA populations as MPI ranks, each with its own run directory and partition."""
