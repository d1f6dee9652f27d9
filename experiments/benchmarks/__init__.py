"""The benchmarks: jaxreg against its peers, cross-validation, the sweep, the meta-learning
hypergradients and the huge grid (``python -m experiments.benchmarks.bench_peers`` etc.), with
their timing helpers (:mod:`experiments.benchmarks.timing`), the peers and references they are
measured against, the peer report and the scaling figure."""
