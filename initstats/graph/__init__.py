"""Network DAGs: construction from specifications and node-link JSON I/O (no torch here)."""

from .build import build_graph, count_edges
from .io import check_graph, from_node_link, read_graph, to_node_link, write_graph

__all__ = ["build_graph", "count_edges", "check_graph", "from_node_link", "read_graph", "to_node_link",
           "write_graph"]
