"""Layer 0, the graph: dtypes, tensor nodes, one record per primitive, snippets, caches,
the TF.js name table. Imports nothing of the layers above.
"""
