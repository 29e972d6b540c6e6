"""``pykeops.numpy.cluster``'s names: ``from dredux.numpy.cluster import grid_cluster``."""

from ..cluster import (  # noqa: F401
    __all__,
    cluster_centroids,
    cluster_ranges,
    cluster_ranges_centroids,
    from_matrix,
    grid_cluster,
    sort_clusters,
    swap_axes,
)
