"""Development tooling, not shipped in the wheel or the image: throwaway services for tests and benches
(:mod:`tools.devservices`), the local cluster of ``make cluster`` (:mod:`tools.devcluster`) and the
benchmarks of ``make bench`` (:mod:`tools.bench`). Run from the repository root (``python -m tools.X``);
may import anything in :mod:`chatio`, which never imports this package."""
