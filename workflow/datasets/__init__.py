"""User data sets (CSV, NPZ) and scikit-learn's bundled digits, as numpy arrays; importable without torch."""
